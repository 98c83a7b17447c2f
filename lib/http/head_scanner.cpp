#include "http/head_scanner.hpp"

#include <cstring>

namespace obsgw::http {

namespace {
// RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
// We tolerate a few (some clients send CRLF after a POST body) and no more.
constexpr std::size_t kMaxLeadingEmptyLines = 4;
}  // namespace

HeadScanner::State HeadScanner::scan(std::string_view data) {
  while (true) {
    const char* base = data.data();
    const void* found = pos_ < data.size() ? std::memchr(base + pos_, '\n', data.size() - pos_) : nullptr;
    if (found == nullptr) {
      pos_ = data.size();
      if (!start_line_done_ && data.size() - line_start_ > limits_.max_start_line)
        return fail(limits_.start_line_status, "uri_too_long", "request line exceeds the configured limit");
      if (data.size() - begin_ > limits_.max_head_bytes)
        return fail(limits_.head_status, "headers_too_large", "header section exceeds the configured limit");
      return State::incomplete;
    }
    std::size_t lf = static_cast<const char*>(found) - base;
    if (lf == line_start_ || base[lf - 1] != '\r')
      return fail(400, "bare_lf", "line terminated by LF without CR");
    std::size_t line_len = lf - 1 - line_start_;
    if (!start_line_done_) {
      if (line_len == 0) {
        if (line_start_ / 2 >= kMaxLeadingEmptyLines) return fail(400, "bad_request_line", "too many empty lines before the request");
        line_start_ = begin_ = pos_ = lf + 1;
        continue;
      }
      if (line_len > limits_.max_start_line)
        return fail(limits_.start_line_status, "uri_too_long", "request line exceeds the configured limit");
      start_line_done_ = true;
    } else if (line_len == 0) {
      end_ = lf + 1;
      if (end_ - begin_ > limits_.max_head_bytes)
        return fail(limits_.head_status, "headers_too_large", "header section exceeds the configured limit");
      return State::complete;
    } else if (++fields_ > limits_.max_fields) {
      return fail(limits_.head_status, "too_many_headers", "more header fields than the configured limit");
    }
    if (lf + 1 - begin_ > limits_.max_head_bytes)
      return fail(limits_.head_status, "headers_too_large", "header section exceeds the configured limit");
    line_start_ = pos_ = lf + 1;
  }
}

}  // namespace obsgw::http
