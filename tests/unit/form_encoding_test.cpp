#include "http/form_encoding.hpp"

#include <gtest/gtest.h>

namespace obsgw::http {
namespace {

TEST(FormEncoding, EncodesAllButUnreservedAndDecodesBack) {
  EXPECT_EQ(form_encode("a-b.c_d~e"), "a-b.c_d~e");
  EXPECT_EQ(form_encode("https://x/cb?a=1&b=2 c"), "https%3A%2F%2Fx%2Fcb%3Fa%3D1%26b%3D2%20c");
  EXPECT_EQ(percent_decode("https%3A%2F%2Fx%2Fcb%3Fa%3D1%26b%3D2+c"), "https://x/cb?a=1&b=2 c");
  EXPECT_EQ(percent_decode("%zz%4"), "%zz%4") << "malformed escapes stay as they are";
}

TEST(FormEncoding, QueryValueTakesTheFirstAndTellsOfRepeats) {
  bool repeated = true;
  EXPECT_EQ(query_value("code=abc&state=x%2By", "state", &repeated), "x+y");
  EXPECT_FALSE(repeated);
  EXPECT_EQ(query_value("state=1&state=2", "state", &repeated), "1");
  EXPECT_TRUE(repeated);
  EXPECT_FALSE(query_value("code=abc", "state"));
  EXPECT_EQ(query_value("flag&x=1", "flag"), "");
}

TEST(FormEncoding, ClientCredentialsAreFormEncodedThenBase64) {
  // RFC 6749 2.3.1: "a:b" as id encodes its colon, so the secret cannot be mistaken for part of the id.
  EXPECT_EQ(client_basic_authorization("gateway", "secret"), "Basic Z2F0ZXdheTpzZWNyZXQ=");
  EXPECT_EQ(client_basic_authorization("a:b", "c d"), "Basic YSUzQWI6YyUyMGQ=");
}

}  // namespace
}  // namespace obsgw::http
