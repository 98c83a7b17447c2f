#include "http/response_parser.hpp"

#include <gtest/gtest.h>

namespace obsgw::http {
namespace {

struct Parsed {
  ResponseParser::State state;
  ResponseHead head;
};

Parsed parse(std::string_view text, std::string_view method = "GET") {
  ResponseParser p;
  Parsed r;
  r.state = p.parse(text, method, r.head);
  return r;
}

TEST(ResponseParser, ContentLength) {
  auto r = parse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX: y\r\n\r\n");
  ASSERT_EQ(r.state, ResponseParser::State::complete);
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.reason, "OK");
  EXPECT_EQ(r.head.framing, BodyFraming::content_length);
  EXPECT_EQ(r.head.content_length, 12u);
  EXPECT_TRUE(r.head.keep_alive);
}

TEST(ResponseParser, ChunkedAndUntilClose) {
  EXPECT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").head.framing, BodyFraming::chunked);
  auto close = parse("HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(close.head.framing, BodyFraming::until_close);
  EXPECT_FALSE(close.head.keep_alive);
}

TEST(ResponseParser, BodilessResponses) {
  EXPECT_EQ(parse("HTTP/1.1 204 No Content\r\n\r\n").head.framing, BodyFraming::none);
  EXPECT_EQ(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n").head.framing, BodyFraming::none);
  auto head = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "HEAD");
  EXPECT_EQ(head.head.framing, BodyFraming::none);
  EXPECT_EQ(head.head.content_length, 10u);
}

TEST(ResponseParser, Http10KeepAlive) {
  EXPECT_FALSE(parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").head.keep_alive);
  EXPECT_TRUE(parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n").head.keep_alive);
}

TEST(ResponseParser, RejectsAmbiguousOrMalformed) {
  for (const char* bad : {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
                          "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n", "HTTP/1.1 099 Low\r\n\r\n"}) {
    auto r = parse(bad);
    EXPECT_EQ(r.state, ResponseParser::State::failed) << bad;
  }
}

TEST(ResponseParser, TransferEncodingWithContentLengthClosesConnection) {
  auto r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_EQ(r.state, ResponseParser::State::complete);
  EXPECT_EQ(r.head.framing, BodyFraming::chunked);
  EXPECT_FALSE(r.head.keep_alive);
}

}  // namespace
}  // namespace obsgw::http
