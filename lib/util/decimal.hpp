#pragma once
// Decimal digits appended to a string without a format call: for the lines built on every request (access log,
// response heads), where fmt's runtime format strings cost more than the digits.

#include <charconv>
#include <cstdint>
#include <string>

namespace obsgw::util {

inline void append_decimal(std::string& out, std::uint64_t n) {
  char digits[20];  // 2^64 - 1 has 20 digits
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

}  // namespace obsgw::util
