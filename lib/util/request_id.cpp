#include "util/request_id.hpp"

#include <cstdint>
#include <random>

namespace obsgw::util {

bool is_valid_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {
// xoshiro256**: fast, and seeded per thread so no lock is needed.
struct Xoshiro {
  std::uint64_t s[4];
  Xoshiro() {
    std::random_device rd;
    for (auto& v : s) v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t next() {
    std::uint64_t result = rotl(s[1] * 5, 7) * 9;
    std::uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
};
}  // namespace

std::string generate_request_id() {
  thread_local Xoshiro rng;
  static const char* hex = "0123456789abcdef";
  std::string id(32, '0');
  std::uint64_t a = rng.next(), b = rng.next();
  for (int i = 0; i < 16; ++i) {
    id[i] = hex[(a >> (i * 4)) & 15];
    id[16 + i] = hex[(b >> (i * 4)) & 15];
  }
  return id;
}

}  // namespace obsgw::util
