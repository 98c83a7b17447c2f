#pragma once
// SipHash (Aumasson and Bernstein) with a per-process random key, for hash tables whose keys a client chooses (rate
// limit buckets keyed by a header, an address): without the key, colliding keys cannot be computed offline to turn
// one table chain into a queue under a shard's lock. SipHash-1-3 for the tables (as Rust's standard maps use);
// the rounds are parameters so that the reference vectors of SipHash-2-4 can test the same code.

#include <bit>
#include <cstdint>
#include <cstring>
#include <random>
#include <string_view>

namespace obsgw::util {

namespace detail {

inline std::uint64_t rotl(std::uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void round() noexcept {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  }
};

inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);  // one load: the byte-by-byte form was not merged into one by GCC 12
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

}  // namespace detail

template <int CompressionRounds, int FinalRounds>
std::uint64_t siphash(std::uint64_t k0, std::uint64_t k1, std::string_view data) noexcept {
  detail::SipState s{k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull, k0 ^ 0x6c7967656e657261ull,
                     k1 ^ 0x7465646279746573ull};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  const std::size_t whole = n - n % 8;
  for (std::size_t i = 0; i < whole; i += 8) {
    const std::uint64_t m = detail::load_le64(p + i);
    s.v3 ^= m;
    for (int r = 0; r < CompressionRounds; ++r) s.round();
    s.v0 ^= m;
  }
  std::uint64_t last = static_cast<std::uint64_t>(n) << 56;
  for (std::size_t i = 0; i < n % 8; ++i) last |= static_cast<std::uint64_t>(p[whole + i]) << (8 * i);
  s.v3 ^= last;
  for (int r = 0; r < CompressionRounds; ++r) s.round();
  s.v0 ^= last;
  s.v2 ^= 0xff;
  for (int r = 0; r < FinalRounds; ++r) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

// The process's key, drawn once from the system's random source.
struct HashKey {
  std::uint64_t k0, k1;
};
inline const HashKey& process_hash_key() {
  static const HashKey key = [] {
    std::random_device rd;
    auto word = [&] { return (static_cast<std::uint64_t>(rd()) << 32) ^ rd(); };
    return HashKey{word(), word()};
  }();
  return key;
}

// Keyed hash functor for unordered containers of strings (heterogeneous lookup by string_view).
struct KeyedStringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    const HashKey& k = process_hash_key();
    return static_cast<std::size_t>(siphash<1, 3>(k.k0, k.k1, s));
  }
};

}  // namespace obsgw::util
