// The 16-byte scans must find exactly the first byte a byte-by-byte scan finds: every byte value, in every
// position of the vector part and of the tail, at several lengths.
#include "util/ascii_scan.hpp"

#include <gtest/gtest.h>

#include <string>

namespace obsgw::util {
namespace {

std::size_t reference_prefix(std::string_view s, bool json) {
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f || (json && (c == '"' || c == '\\'))) break;
  }
  return i;
}

TEST(AsciiScan, StopsWhereAByteByByteScanStops) {
  for (int b = 0; b < 256; ++b)
    for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 50u})
      for (std::size_t pos = 0; pos <= len; ++pos) {
        std::string s(len + 16, 'x');  // plain bytes past the view: a scan that read them would count them
        if (pos < len) s[pos] = static_cast<char>(b);
        const std::string_view v(s.data(), len);
        ASSERT_EQ(printable_ascii_prefix(v), reference_prefix(v, false)) << "byte " << b << " at " << pos << " of " << len;
        ASSERT_EQ(json_plain_prefix(v), reference_prefix(v, true)) << "byte " << b << " at " << pos << " of " << len;
      }
}

TEST(AsciiScan, FindsTheFirstOfSeveralStops) {
  std::string s(64, 'a');
  s[40] = '"';
  s[20] = '\x80';
  s[5] = '\\';
  EXPECT_EQ(printable_ascii_prefix(s), 20u);  // '\' and '"' are printable
  EXPECT_EQ(json_plain_prefix(s), 5u);
  EXPECT_EQ(json_plain_prefix(std::string_view(s).substr(6)), 14u);
  EXPECT_EQ(printable_ascii_prefix(std::string(100, '~')), 100u);
  EXPECT_EQ(printable_ascii_prefix(std::string(100, '\x7f')), 0u);
}

}  // namespace
}  // namespace obsgw::util
