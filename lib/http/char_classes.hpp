#pragma once
// Character classes of RFC 9110 / RFC 3986, as lookup tables.

#include <array>
#include <string_view>

#include "util/ascii_scan.hpp"

namespace obsgw::http {

namespace detail {
constexpr std::array<bool, 256> make_table(bool (*pred)(unsigned char)) {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = pred(static_cast<unsigned char>(c));
  return t;
}
constexpr bool is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit_c(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool tchar(unsigned char c) {
  return is_alpha(c) || is_digit_c(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
// field-vchar / SP / HTAB / obs-text
constexpr bool field_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
constexpr bool unreserved(unsigned char c) {
  return is_alpha(c) || is_digit_c(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
constexpr bool sub_delim(unsigned char c) { return std::string_view("!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos; }
// pchar without pct-encoded ('%' is checked separately), plus '/' and '?'
constexpr bool target_char(unsigned char c) {
  return unreserved(c) || sub_delim(c) || c == ':' || c == '@' || c == '/' || c == '?' || c == '%';
}
constexpr bool host_char(unsigned char c) { return unreserved(c) || sub_delim(c) || c == '%'; }
constexpr bool hex_c(unsigned char c) { return is_digit_c(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
inline constexpr auto kToken = make_table(tchar);
inline constexpr auto kFieldValue = make_table(field_char);
inline constexpr auto kTarget = make_table(target_char);
inline constexpr auto kHost = make_table(host_char);
inline constexpr auto kHex = make_table(hex_c);
}  // namespace detail

inline bool is_token_char(char c) noexcept { return detail::kToken[static_cast<unsigned char>(c)]; }
inline bool is_field_value_char(char c) noexcept { return detail::kFieldValue[static_cast<unsigned char>(c)]; }
inline bool is_target_char(char c) noexcept { return detail::kTarget[static_cast<unsigned char>(c)]; }
inline bool is_host_char(char c) noexcept { return detail::kHost[static_cast<unsigned char>(c)]; }
inline bool is_hex_digit(char c) noexcept { return detail::kHex[static_cast<unsigned char>(c)]; }

inline bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}
// Header values are nearly always printable ASCII: that is checked 16 bytes at a time, and only the bytes that
// stop it (HTAB, obs-text, or a byte that is not allowed) are looked up in the table.
inline bool is_field_value(std::string_view s) noexcept {
  for (std::size_t i = 0;; ++i) {
    i += util::printable_ascii_prefix(std::string_view(s.data() + i, s.size() - i));
    if (i == s.size()) return true;
    if (!is_field_value_char(s[i])) return false;
  }
}
inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
inline char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(token) for each element of a comma-separated list, trimmed, skipping empty elements.
template <class F>
void for_each_list_item(std::string_view list, F f) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = trim_ows(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace obsgw::http
