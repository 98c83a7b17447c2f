#include "http/request_parser.hpp"

#include "http/char_classes.hpp"

#include <gtest/gtest.h>

#include <string>

namespace obsgw::http {
namespace {

struct Parsed {
  RequestParser::State state;
  HttpError error;
  RequestHead head;
  std::size_t head_size;
};

Parsed parse(std::string_view text, HttpLimits limits = {}) {
  RequestParser p(limits);
  Parsed r;
  r.state = p.parse(text, r.head);
  r.error = p.error();
  r.head_size = p.head_size();
  return r;
}

// Feeds the request one byte at a time, as a slow client would.
Parsed parse_bytewise(std::string_view text, HttpLimits limits = {}) {
  RequestParser p(limits);
  Parsed r;
  for (std::size_t n = 1; n <= text.size(); ++n) {
    r.state = p.parse(text.substr(0, n), r.head);
    if (r.state != RequestParser::State::incomplete) break;
  }
  r.error = p.error();
  r.head_size = p.head_size();
  return r;
}

void expect_rejected(std::string_view text, int status, std::string_view code) {
  auto r = parse(text);
  ASSERT_EQ(r.state, RequestParser::State::failed) << text;
  EXPECT_EQ(r.error.status, status) << text;
  EXPECT_EQ(std::string_view(r.error.code), code) << text;
}

TEST(RequestParser, ParsesOriginFormRequest) {
  auto r = parse("GET /api/v1/query?q=up HTTP/1.1\r\nHost: Example.COM:8080\r\nX-A:  b \r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.path, "/api/v1/query");
  EXPECT_EQ(r.head.query, "q=up");
  EXPECT_EQ(r.head.authority, "Example.COM:8080");
  EXPECT_EQ(r.head.host(), "example.com");
  EXPECT_EQ(r.head.version_minor, 1);
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_EQ(r.head.framing, BodyFraming::none);
  ASSERT_EQ(r.head.headers.size(), 2u);
  EXPECT_EQ(*r.head.headers.get("x-a"), "b");
}

TEST(RequestParser, IncompleteUntilEmptyLine) {
  auto r = parse("GET / HTTP/1.1\r\nHost: a\r\n");
  EXPECT_EQ(r.state, RequestParser::State::incomplete);
}

TEST(RequestParser, ByteAtATimeGivesSameResult) {
  std::string req = "POST /push HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  auto r = parse_bytewise(req);
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head_size, req.size() - 3);
  EXPECT_EQ(r.head.framing, BodyFraming::content_length);
  EXPECT_EQ(r.head.content_length, 3u);
}

TEST(RequestParser, AbsoluteFormTakesAuthorityOverHost) {
  auto r = parse("GET http://api.example:81/a/b?x HTTP/1.1\r\nHost: other\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head.authority, "api.example:81");
  EXPECT_EQ(r.head.path, "/a/b");
  EXPECT_EQ(r.head.query, "x");
}

TEST(RequestParser, AbsoluteFormWithoutPathIsRoot) {
  auto r = parse("GET https://h HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head.path, "/");
}

TEST(RequestParser, AbsoluteFormWithUserinfoIsRejected) {
  expect_rejected("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad_target");
}

TEST(RequestParser, ToleratesLeadingEmptyLines) {
  auto r = parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head.method, "GET");
}

TEST(RequestParser, Http10DefaultsToClose) {
  auto r = parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_FALSE(r.head.keep_alive);
  auto k = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(k.head.keep_alive);
}

TEST(RequestParser, ConnectionCloseAndUpgrade) {
  auto r = parse("GET /tail HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_TRUE(r.head.websocket_upgrade);
  auto c = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(c.head.keep_alive);
  auto h2c = parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
  EXPECT_FALSE(h2c.head.websocket_upgrade);
}

TEST(RequestParser, ExpectContinue) {
  auto r = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_TRUE(r.head.expect_continue);
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417, "expectation_failed");
}

TEST(RequestParser, ChunkedFraming) {
  auto r = parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head.framing, BodyFraming::chunked);
}

TEST(RequestParser, ZeroContentLengthHasNoBody) {
  auto r = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.state, RequestParser::State::complete);
  EXPECT_EQ(r.head.framing, BodyFraming::none);
}

// ---- request smuggling shapes ----

TEST(RequestParserSmuggling, ContentLengthAndTransferEncoding) {
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "ambiguous_framing");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400, "ambiguous_framing");
}

TEST(RequestParserSmuggling, DuplicateContentLength) {
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400, "ambiguous_framing");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "ambiguous_framing");
}

TEST(RequestParserSmuggling, InvalidContentLength) {
  for (const char* v : {"5, 5", "+5", "-1", "0x10", "5 5", "", "99999999999999999999", "1e3"})
    expect_rejected(std::string("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ") + v + "\r\n\r\n", 400, "bad_content_length");
}

TEST(RequestParserSmuggling, TransferEncodingOtherThanFinalChunked) {
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "ambiguous_framing");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "ambiguous_framing");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, "ambiguous_framing");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "ambiguous_framing");
  expect_rejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported_transfer_coding");
}

TEST(RequestParserSmuggling, TransferEncodingInHttp10) {
  expect_rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "ambiguous_framing");
}

TEST(RequestParserSmuggling, BareLineFeed) {
  expect_rejected("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare_lf");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare_lf");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare_lf");
}

TEST(RequestParserSmuggling, BareLineFeedRejectedBeforeHeadCompletes) {
  // The scanner refuses at the first bad line ending, without waiting for more bytes.
  auto r = parse("GET / HTTP/1.1\nHos");
  EXPECT_EQ(r.state, RequestParser::State::failed);
}

TEST(RequestParserSmuggling, BareCarriageReturn) {
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare_cr");
}

TEST(RequestParserSmuggling, ControlBytesInHeaderValue) {
  expect_rejected(std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 36), 400, "bad_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", 400, "bad_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400, "bad_header");
}

TEST(RequestParserSmuggling, ObsFold) {
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "obs_fold");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400, "obs_fold");
}

TEST(RequestParserSmuggling, WhitespaceBeforeColon) {
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400, "bad_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400, "bad_header");
}

TEST(RequestParserSmuggling, InvalidHeaderNames) {
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, "bad_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nX(y): x\r\n\r\n", 400, "bad_header");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", 400, "bad_header");
}

TEST(RequestParserSmuggling, InvalidMethod) {
  expect_rejected("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_method");
  expect_rejected("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request_line");
  expect_rejected(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request_line");
}

TEST(RequestParserSmuggling, InvalidVersion) {
  expect_rejected("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad_request_line");
  expect_rejected("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad_version");
  expect_rejected("GET / HTTP/11\r\nHost: a\r\n\r\n", 400, "bad_version");
  expect_rejected("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "version_not_supported");
  expect_rejected("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "version_not_supported");
}

TEST(RequestParserSmuggling, HostRules) {
  expect_rejected("GET / HTTP/1.1\r\n\r\n", 400, "bad_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", 400, "bad_host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a:99999999\r\n\r\n", 400, "bad_host");
}

TEST(RequestParserSmuggling, TargetRules) {
  expect_rejected("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request_line");
  expect_rejected("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET /../etc HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET /a/%2e%2E/%2e%2e/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405, "method_not_allowed");
}

// ---- limits ----

TEST(RequestParserLimits, RequestLineTooLong) {
  HttpLimits l;
  l.max_request_line = 64;
  std::string line = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  auto r = parse(line, l);
  ASSERT_EQ(r.state, RequestParser::State::failed);
  EXPECT_EQ(r.error.status, 414);
  // Refused before the line ends, as soon as the limit is passed.
  auto partial = parse(std::string_view(line).substr(0, 70), l);
  EXPECT_EQ(partial.error.status, 414);
}

TEST(RequestParserLimits, HeaderBytesTooLarge) {
  HttpLimits l;
  l.max_header_bytes = 256;
  std::string req = "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'v') + "\r\n\r\n";
  auto r = parse(req, l);
  ASSERT_EQ(r.state, RequestParser::State::failed);
  EXPECT_EQ(r.error.status, 431);
  // And while still incomplete.
  auto partial = parse(std::string_view(req).substr(0, 280), l);
  EXPECT_EQ(partial.error.status, 431);
}

TEST(RequestParserLimits, TooManyHeaders) {
  HttpLimits l;
  l.max_header_count = 5;
  std::string req = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 5; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  auto r = parse(req, l);
  ASSERT_EQ(r.state, RequestParser::State::failed);
  EXPECT_EQ(r.error.status, 431);
  EXPECT_EQ(std::string_view(r.error.code), "too_many_headers");
}

TEST(RequestParserLimits, ContentLengthOverBodyLimit) {
  HttpLimits l;
  l.max_body_bytes = 10;
  auto r = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", l);
  ASSERT_EQ(r.state, RequestParser::State::failed);
  EXPECT_EQ(r.error.status, 413);
}

// ---- path normalisation ----

TEST(NormalizePath, RemovesDotSegments) {
  auto norm = [](std::string p) {
    EXPECT_TRUE(normalize_path(p));
    return p;
  };
  EXPECT_EQ(norm("/a/b/../c"), "/a/c");
  EXPECT_EQ(norm("/a/./b"), "/a/b");
  EXPECT_EQ(norm("/a/b/.."), "/a/");
  EXPECT_EQ(norm("/a/%2E%2e/b"), "/b");
  EXPECT_EQ(norm("/a/.hidden"), "/a/.hidden");
  EXPECT_EQ(norm("/a/..."), "/a/...");
  EXPECT_EQ(norm("/"), "/");
  EXPECT_EQ(norm("/a/"), "/a/");
  std::string up = "/a/../../b";
  EXPECT_FALSE(normalize_path(up));
}

TEST(CanonicalizePath, OneSpellingPerPath) {
  auto canon = [](std::string p) {
    const char* why = canonicalize_path(p);
    EXPECT_EQ(why, nullptr) << p;
    return p;
  };
  EXPECT_EQ(canon("/%61dmin/users"), "/admin/users");  // unreserved characters decoded
  EXPECT_EQ(canon("//admin///users"), "/admin/users");  // slashes merged
  EXPECT_EQ(canon("/a/%2e%2E/admin"), "/admin");
  EXPECT_EQ(canon("/a%20b/%7e"), "/a%20b/~");           // reserved encodings kept, unreserved decoded
  EXPECT_EQ(canon("/x;v=1/y"), "/x;v=1/y");             // parameters on ordinary segments are fine
  for (std::string bad : {"/admin%2Fusers", "/admin%2fusers", "/a%5Cb", "/a%00", "/public/..;/admin", "/.;x/a",
                          "/../x", "//../x"}) {
    std::string p = bad;
    EXPECT_NE(canonicalize_path(p), nullptr) << bad;
  }
}

TEST(RequestParser, RouteGuardCannotBeSidesteppedBySpelling) {
  for (const char* target : {"/%61dmin/users", "//admin/users", "/x/../admin/users", "/%2e/admin/users"}) {
    auto r = parse(std::string("GET ") + target + " HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(r.state, RequestParser::State::complete) << target;
    EXPECT_EQ(r.head.path, "/admin/users") << target;
  }
  expect_rejected("GET /admin%2Fusers HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
  expect_rejected("GET /p/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_target");
}

TEST(RequestHead, HostIgnoresTrailingDotAndCase) {
  RequestHead h;
  h.authority = "API.Example.com.:8443";
  EXPECT_EQ(h.host(), "api.example.com");
}

TEST(Authority, Validation) {
  EXPECT_TRUE(is_valid_authority("example.com"));
  EXPECT_TRUE(is_valid_authority("example.com:8080"));
  EXPECT_TRUE(is_valid_authority("[::1]:8080"));
  EXPECT_TRUE(is_valid_authority("[::1]"));
  EXPECT_FALSE(is_valid_authority(""));
  EXPECT_FALSE(is_valid_authority(":80"));
  EXPECT_FALSE(is_valid_authority("a:"));
  EXPECT_FALSE(is_valid_authority("[::1"));
  EXPECT_FALSE(is_valid_authority("a/b"));
}

}  // namespace
}  // namespace obsgw::http

namespace obsgw::http {
namespace {

// The 16-bytes-at-a-time check of header values must agree with the byte table for every byte in every position,
// in the vector part, in the tail after it, and across several blocks.
TEST(FieldValue, BlockCheckAgreesWithTheByteTable) {
  auto reference = [](std::string_view s) {
    for (char c : s)
      if (!is_field_value_char(c)) return false;
    return true;
  };
  for (int b = 0; b < 256; ++b)
    for (std::size_t len : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 23u, 31u, 32u, 47u})
      for (std::size_t pos = 0; pos < len; ++pos) {
        std::string s(len, 'a');
        s[pos] = static_cast<char>(b);
        ASSERT_EQ(is_field_value(s), reference(s)) << "byte " << b << " at " << pos << " of " << len;
      }
  std::uint64_t x = 88172645463325252ULL;  // xorshift: random mixes of the byte classes
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<std::size_t>(i % 70), ' ');
    for (char& c : s) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      const char pool[] = {'a', 'Z', ' ', '\t', '\x7f', '\x1f', '\x80', '\xff', '~', '\0', '\r', '\n'};
      c = pool[x % sizeof pool];
    }
    ASSERT_EQ(is_field_value(s), reference(s));
  }
}

}  // namespace
}  // namespace obsgw::http
