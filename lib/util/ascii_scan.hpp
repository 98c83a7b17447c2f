#pragma once
// Finding where plain ASCII text ends, 16 bytes per step: header values (a bearer token is 500-1,500 bytes) and
// access-log strings are scanned on every request, and nearly always turn out to be plain. The JSON variant lives
// here too because it is the same printable test with two more stops.

#include <bit>
#include <cstddef>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace obsgw::util {

namespace detail {
constexpr bool is_printable_ascii(unsigned char c) noexcept { return c >= 0x20 && c < 0x7f; }
constexpr bool is_json_plain(unsigned char c) noexcept { return is_printable_ascii(c) && c != '"' && c != '\\'; }

// Bits set for the bytes of `v` outside 0x20..0x7E. The compare is signed, so bytes >= 0x80 count as below 0x20.
#if defined(__SSE2__)
inline unsigned not_printable_mask(__m128i v) noexcept {
  const __m128i below = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
  const __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(below, del)));
}
#endif
}  // namespace detail

/// Length of the longest prefix of `s` made of printable ASCII (0x20-0x7E).
inline std::size_t printable_ascii_prefix(std::string_view s) noexcept {
  std::size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    if (unsigned bad = detail::not_printable_mask(v)) return i + static_cast<std::size_t>(std::countr_zero(bad));
  }
#endif
  while (i < s.size() && detail::is_printable_ascii(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

/// Length of the longest prefix of `s` that a JSON string holds as it is: printable ASCII other than '"' and '\'.
inline std::size_t json_plain_prefix(std::string_view s) noexcept {
  std::size_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    if (unsigned bad = detail::not_printable_mask(v) | static_cast<unsigned>(_mm_movemask_epi8(special)))
      return i + static_cast<std::size_t>(std::countr_zero(bad));
  }
#endif
  while (i < s.size() && detail::is_json_plain(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

}  // namespace obsgw::util
