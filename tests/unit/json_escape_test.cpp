#include "util/json_escape.hpp"

#include <gtest/gtest.h>

#include "util/request_id.hpp"

namespace obsgw::util {
namespace {

TEST(JsonEscape, EscapesSpecialAndControlCharacters) {
  EXPECT_EQ(json_string("a\"b\\c\n\t\x01"), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
}

TEST(JsonEscape, PlainRunsAndTheirEdges) {
  EXPECT_EQ(json_string(""), "\"\"");
  EXPECT_EQ(json_string("plain text, 100% ASCII ~"), "\"plain text, 100% ASCII ~\"");
  EXPECT_EQ(json_string("a\x7f"), "\"a\\u007f\"");
  EXPECT_EQ(json_string("\x1f" "b"), "\"\\u001fb\"");
  EXPECT_EQ(json_string("\xc3\xa9t\xc3\xa9 ok"), "\"\xc3\xa9t\xc3\xa9 ok\"");
  EXPECT_EQ(json_string("end\\"), "\"end\\\\\"");
  EXPECT_EQ(json_string(std::string_view("nul\0byte", 8)), "\"nul\\u0000byte\"");
}

TEST(JsonEscape, KeepsValidUtf8AndReplacesInvalid) {
  EXPECT_EQ(json_string("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(json_string("bad\xff"), "\"bad\xEF\xBF\xBD\"");
  EXPECT_EQ(json_string("\xed\xa0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate half
  EXPECT_EQ(json_string("\xc3"), "\"\xEF\xBF\xBD\"");                                  // truncated
}

TEST(RequestId, ValidationAndGeneration) {
  EXPECT_TRUE(is_valid_request_id("abc-123_x.y:z"));
  EXPECT_FALSE(is_valid_request_id(""));
  EXPECT_FALSE(is_valid_request_id("has space"));
  EXPECT_FALSE(is_valid_request_id(std::string(129, 'a')));
  auto a = generate_request_id(), b = generate_request_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(is_valid_request_id(a));
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace obsgw::util
