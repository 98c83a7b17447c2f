#include "util/decimal.hpp"
#include "util/log_timestamp.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace obsgw::util {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

system_clock::time_point at_ms(std::int64_t ms) { return system_clock::time_point(milliseconds(ms)); }

TEST(LogTimestamp, FormatsUtcWithMilliseconds) {
  std::string out = "x";
  append_log_timestamp(out, at_ms(1795391976673));  // 2026-11-22T23:59:36.673Z
  EXPECT_EQ(out, "x2026-11-22T23:59:36.673Z");
}

TEST(LogTimestamp, PadsMillisecondsAndFollowsTheSecond) {
  // The date part is cached per second: consecutive calls across a second and a day boundary must not reuse it.
  std::string a, b, c;
  append_log_timestamp(a, at_ms(1795391999005));  // 23:59:59.005
  append_log_timestamp(b, at_ms(1795391999999));
  append_log_timestamp(c, at_ms(1795392000000));  // the next day
  EXPECT_EQ(a, "2026-11-22T23:59:59.005Z");
  EXPECT_EQ(b, "2026-11-22T23:59:59.999Z");
  EXPECT_EQ(c, "2026-11-23T00:00:00.000Z");
}

TEST(LogTimestamp, AppendsDecimals) {
  std::string out;
  append_decimal(out, 0);
  out += ' ';
  append_decimal(out, 1234567890);
  out += ' ';
  append_decimal(out, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(out, "0 1234567890 18446744073709551615");
}

}  // namespace
}  // namespace obsgw::util
