#include "http/chunked_decoder.hpp"

#include <gtest/gtest.h>

#include <string>

namespace obsgw::http {
namespace {

struct Decoded {
  std::string body;
  bool done = false;
  HttpError error{};
  std::size_t consumed = 0;
};

// Decodes `in` delivered in pieces of `piece` bytes (re-offering unconsumed bytes, as the connection does).
Decoded decode(std::string_view in, std::size_t piece = 1 << 20) {
  ChunkedDecoder d(400);
  Decoded out;
  std::string pending;
  std::size_t offered = 0;
  while (!out.done && !out.error) {
    if (offered < in.size()) {
      std::size_t n = std::min(piece, in.size() - offered);
      pending.append(in.substr(offered, n));
      offered += n;
    } else if (pending.empty()) {
      break;
    }
    bool progressed = true;
    while (progressed && !pending.empty()) {
      auto step = d.decode(pending);
      if (step.error) {
        out.error = step.error;
        break;
      }
      out.body.append(step.data);
      out.consumed += step.consumed;
      pending.erase(0, step.consumed);
      if (step.done) {
        out.done = true;
        break;
      }
      progressed = step.consumed > 0;
    }
    if (offered == in.size() && !progressed) break;
  }
  return out;
}

TEST(ChunkedDecoder, DecodesChunks) {
  auto r = decode("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.body, "hello world");
}

TEST(ChunkedDecoder, ByteAtATime) {
  auto r = decode("a\r\n0123456789\r\n1;name=value;flag\r\nX\r\n0\r\nTrailer-A: 1\r\n\r\n", 1);
  EXPECT_TRUE(r.done) << r.error.message;
  EXPECT_EQ(r.body, "0123456789X");
}

TEST(ChunkedDecoder, StopsAtEndAndLeavesNextRequest) {
  std::string in = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
  auto r = decode(in);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, in.find("GET"));
}

TEST(ChunkedDecoder, HexCaseAndQuotedExtension) {
  auto r = decode("A;ext=\"quoted \\\" value\"\r\n0123456789\r\n0\r\n\r\n");
  EXPECT_TRUE(r.done) << r.error.message;
  EXPECT_EQ(r.body.size(), 10u);
}

void expect_invalid(std::string_view in) {
  auto r = decode(in);
  EXPECT_FALSE(r.done) << in;
  EXPECT_EQ(r.error.status, 400) << in;
  auto slow = decode(in, 1);
  EXPECT_EQ(slow.error.status, 400) << "bytewise: " << in;
}

TEST(ChunkedDecoder, RejectsInvalidSizes) {
  expect_invalid("\r\nabc\r\n0\r\n\r\n");            // empty size
  expect_invalid("g\r\nabc\r\n0\r\n\r\n");           // not hex
  expect_invalid("-3\r\nabc\r\n0\r\n\r\n");
  expect_invalid("0x3\r\nabc\r\n0\r\n\r\n");
  expect_invalid("1000000000000000\r\n");            // 16 digits: overflow guard
}

TEST(ChunkedDecoder, RejectsBadLineEndings) {
  expect_invalid("3\nabc\r\n0\r\n\r\n");
  expect_invalid("3\rabc\r\n0\r\n\r\n");
  expect_invalid("3\r\nabcX\r\n0\r\n\r\n");  // data longer than the size
  expect_invalid("3\r\nabc\n0\r\n\r\n");
  expect_invalid("0\r\n\n");
}

TEST(ChunkedDecoder, RejectsInvalidExtensions) {
  expect_invalid("3;\r\nabc\r\n0\r\n\r\n");
  expect_invalid("3;=x\r\nabc\r\n0\r\n\r\n");
  expect_invalid("3;a=\"unterminated\r\nabc\r\n0\r\n\r\n");
  expect_invalid("3;a b\r\nabc\r\n0\r\n\r\n");
  expect_invalid(std::string("3;") + std::string(300, 'a') + "\r\nabc\r\n0\r\n\r\n");
}

TEST(ChunkedDecoder, RejectsInvalidTrailers) {
  expect_invalid("0\r\nno-colon\r\n\r\n");
  expect_invalid("0\r\n: empty-name\r\n\r\n");
  expect_invalid("0\r\nX: a\r\n folded\r\n\r\n");
  expect_invalid("0\r\nX: a\x01\r\n\r\n");
}

TEST(ChunkedDecoder, ErrorStatusIsConfigurable) {
  ChunkedDecoder d(502);
  auto step = d.decode("zz\r\n");
  EXPECT_EQ(step.error.status, 502);
}

}  // namespace
}  // namespace obsgw::http
