// Cache-Control of key-set responses: what refresh period the provider asks for (the key fetcher then clamps it
// to min/max_refresh_interval_s).
#include <gtest/gtest.h>

#include "net/http_client.hpp"

namespace obsgw::net {
namespace {

using std::chrono::seconds;

TEST(CacheControl, MaxAgeAndWhatOverridesIt) {
  EXPECT_EQ(cache_max_age("max-age=600"), seconds(600));
  EXPECT_EQ(cache_max_age("public, max-age=300, must-revalidate"), seconds(300));
  EXPECT_EQ(cache_max_age("MAX-AGE=42"), seconds(42));                   // directive names are case-insensitive
  EXPECT_EQ(cache_max_age(" \tmax-age=7 \t"), seconds(7));               // optional whitespace around it
  EXPECT_EQ(cache_max_age("max-age=\"90\""), seconds(90));               // the quoted form (RFC 9111 1.2.2)
  EXPECT_EQ(cache_max_age("max-age=0"), seconds(0));
  EXPECT_EQ(cache_max_age("max-age=10, max-age=20"), seconds(20));       // the last one wins
  // Nothing to cache: refresh as soon as the bounds allow.
  EXPECT_EQ(cache_max_age("no-store"), seconds(0));
  EXPECT_EQ(cache_max_age("max-age=600, no-cache"), seconds(0));
  EXPECT_EQ(cache_max_age("No-Cache"), seconds(0));
  // No usable max-age: the configured refresh interval applies.
  EXPECT_EQ(cache_max_age(""), std::nullopt);
  EXPECT_EQ(cache_max_age("public"), std::nullopt);
  EXPECT_EQ(cache_max_age("max-age="), std::nullopt);
  EXPECT_EQ(cache_max_age("max-age=-5"), std::nullopt);
  EXPECT_EQ(cache_max_age("max-age=12abc"), std::nullopt);
  EXPECT_EQ(cache_max_age("max-age=1.5"), std::nullopt);
  EXPECT_EQ(cache_max_age("max-age=\"9"), std::nullopt);
  EXPECT_EQ(cache_max_age("s-maxage=60"), std::nullopt);                  // for shared caches, not us
  EXPECT_EQ(cache_max_age("max-age=99999999999999999999999"), std::nullopt);  // out of range
}

}  // namespace
}  // namespace obsgw::net
