#include "auth/base64url.hpp"

#include <array>
#include <cstdint>

namespace obsgw::auth {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto kTable = make_table();
}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  // Four characters make three bytes: the output is sized once and written through a pointer (a push_back per
  // byte cost more than the decoding itself on a 700-byte token).
  const std::size_t full = in.size() / 4, rest = in.size() % 4;
  std::string out(full * 3 + (rest ? rest - 1 : 0), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  for (std::size_t i = 0; i < full; ++i, p += 4, o += 3) {
    const std::int32_t a = kTable[p[0]], b = kTable[p[1]], c = kTable[p[2]], d = kTable[p[3]];
    if ((a | b | c | d) < 0) return std::nullopt;
    const std::uint32_t v = (static_cast<std::uint32_t>(a) << 18) | (static_cast<std::uint32_t>(b) << 12) |
                            (static_cast<std::uint32_t>(c) << 6) | static_cast<std::uint32_t>(d);
    o[0] = static_cast<unsigned char>(v >> 16);
    o[1] = static_cast<unsigned char>(v >> 8);
    o[2] = static_cast<unsigned char>(v);
  }
  if (rest) {  // 2 or 3 characters: 1 or 2 bytes, and the unused low bits must be zero (canonical form)
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < rest; ++k) {
      const std::int32_t x = kTable[p[k]];
      if (x < 0) return std::nullopt;
      v = (v << 6) | static_cast<std::uint32_t>(x);
    }
    const unsigned spare_bits = rest == 2 ? 4 : 2;
    if (v & ((1u << spare_bits) - 1)) return std::nullopt;
    v >>= spare_bits;
    if (rest == 3) {
      o[0] = static_cast<unsigned char>(v >> 8);
      o[1] = static_cast<unsigned char>(v);
    } else {
      o[0] = static_cast<unsigned char>(v);
    }
  }
  return out;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

}  // namespace obsgw::auth
