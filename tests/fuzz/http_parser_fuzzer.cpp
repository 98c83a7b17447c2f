// Fuzzes the request head parser, the chunked decoder and the response head parser with hostile bytes.
// Besides memory safety (ASan/UBSan), it checks properties that must hold for every input:
//  - splitting the input at any point gives the same verdict as parsing it whole (incremental = batch);
//  - a completed head never claims more bytes than it was given, and its path is normalised;
//  - the chunked decoder never returns more data than it consumed, and the same body byte by byte.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "http/chunked_decoder.hpp"
#include "http/request_parser.hpp"
#include "http/response_parser.hpp"

using namespace obsgw;
using namespace obsgw::http;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void fuzz_request(std::string_view in) {
  HttpLimits limits;
  limits.max_request_line = 512;
  limits.max_header_bytes = 2048;
  limits.max_header_count = 20;
  limits.max_body_bytes = 1 << 20;

  RequestParser whole(limits);
  RequestHead head;
  auto state = whole.parse(in, head);
  if (state == RequestParser::State::complete) {
    check(whole.head_size() <= in.size());
    check(!head.path.empty() && (head.path[0] == '/' || head.path == "*"));
    check(head.path.find("/../") == std::string::npos && head.path.find("/./") == std::string::npos);
    if (head.path != "*") {
      check(head.path.find("//") == std::string::npos);                  // slashes merged
      check(head.path.find("%2F") == std::string::npos && head.path.find("%2f") == std::string::npos);
      std::string again = head.path;                                      // canonical form is a fixed point
      check(canonicalize_path(again) == nullptr && again == head.path);
    }
    check(head.method.size() <= 32);
  } else if (state == RequestParser::State::failed) {
    check(whole.error().status >= 400 && whole.error().status < 600);
  }

  // Incremental: feed growing prefixes at a split point chosen by the input.
  std::size_t split = in.empty() ? 0 : static_cast<unsigned char>(in[0]) % (in.size() + 1);
  RequestParser inc(limits);
  RequestHead head2;
  auto s1 = inc.parse(in.substr(0, split), head2);
  auto s2 = s1 == RequestParser::State::incomplete ? inc.parse(in, head2) : s1;
  if (s1 == RequestParser::State::incomplete) {
    check(s2 == state);
    if (state == RequestParser::State::failed) check(inc.error().status == whole.error().status);
    if (state == RequestParser::State::complete) {
      check(inc.head_size() == whole.head_size());
      check(head2.path == head.path && head2.framing == head.framing && head2.content_length == head.content_length);
    }
  } else {
    // A verdict on a prefix must be the verdict on the whole, for a complete head...
    if (s1 == RequestParser::State::complete) check(state == RequestParser::State::complete);
    // ...and an early refusal must not be contradicted by the full input completing cleanly.
    if (s1 == RequestParser::State::failed) check(state == RequestParser::State::failed);
  }
}

void fuzz_chunked(std::string_view in) {
  ChunkedDecoder whole(400);
  std::string body_whole;
  std::string_view rest = in;
  bool failed_whole = false, done_whole = false;
  while (!rest.empty()) {
    auto step = whole.decode(rest);
    if (step.error) {
      failed_whole = true;
      break;
    }
    check(step.consumed <= rest.size());
    check(step.data.size() <= step.consumed);
    body_whole.append(step.data);
    rest.remove_prefix(step.consumed);
    if (step.done) {
      done_whole = true;
      break;
    }
    if (step.consumed == 0) break;
  }
  // Byte by byte must agree.
  ChunkedDecoder bytewise(400);
  std::string body_bytes, pending;
  bool failed_bytes = false, done_bytes = false;
  for (std::size_t i = 0; i < in.size() && !failed_bytes && !done_bytes; ++i) {
    pending.push_back(in[i]);
    while (!pending.empty()) {
      auto step = bytewise.decode(pending);
      if (step.error) {
        failed_bytes = true;
        break;
      }
      body_bytes.append(step.data);
      pending.erase(0, step.consumed);
      if (step.done) {
        done_bytes = true;
        break;
      }
      if (step.consumed == 0) break;
    }
  }
  check(failed_whole == failed_bytes);
  check(done_whole == done_bytes);
  if (!failed_whole) check(body_bytes == body_whole);
}

void fuzz_response(std::string_view in) {
  ResponseParser p(4096);
  ResponseHead head;
  auto state = p.parse(in, in.size() % 2 ? "HEAD" : "GET", head);
  if (state == ResponseParser::State::complete) {
    check(p.head_size() <= in.size());
    check(head.status >= 100 && head.status <= 599);
  } else if (state == ResponseParser::State::failed) {
    check(p.error().status == 502);
  }
}

// Token segments have exactly one spelling: whatever decodes must encode back to the same text.
void fuzz_base64url(std::string_view in) {
  if (auto decoded = auth::base64url_decode(in)) check(auth::base64url_encode(*decoded) == in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz_request(in);
  if (size < 4096) fuzz_chunked(in);
  fuzz_response(in);
  fuzz_base64url(in);
  return 0;
}
