#pragma once
// Lower-case hex of bytes (digests, MACs): one growth of the string, then plain stores.

#include <cstddef>
#include <string>

namespace obsgw::util {

inline void append_hex(std::string& out, const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t at = out.size();
  out.resize(at + 2 * n);  // push_back per character showed in profiles
  char* o = out.data() + at;
  for (std::size_t i = 0; i < n; ++i) {
    o[2 * i] = kHex[p[i] >> 4];
    o[2 * i + 1] = kHex[p[i] & 15];
  }
}

}  // namespace obsgw::util
