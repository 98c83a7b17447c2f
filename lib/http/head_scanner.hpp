#pragma once
// Finds the end of a message head (CRLF CRLF) across partial reads without rescanning, and enforces the
// size limits while the head is still incomplete, so that a hostile client cannot make us buffer more.

#include <cstddef>
#include <string_view>

#include "http/http_error.hpp"

namespace obsgw::http {

struct HeadLimits {
  std::size_t max_start_line = 8 * 1024;
  std::size_t max_head_bytes = 32 * 1024;
  std::size_t max_fields = 100;
  int start_line_status = 414;  // 414 for requests; responses use 502 upstream-side
  int head_status = 431;
};

class HeadScanner {
 public:
  enum class State { incomplete, complete, failed };

  explicit HeadScanner(const HeadLimits& limits) : limits_(limits) {}

  // `data` holds every buffered byte of this message so far, starting at its first byte.
  // On `complete`, the head is data[begin(), end()).
  State scan(std::string_view data);
  std::size_t begin() const noexcept { return begin_; }
  std::size_t end() const noexcept { return end_; }
  const HttpError& error() const noexcept { return error_; }
  void reset() noexcept { *this = HeadScanner(limits_); }

 private:
  State fail(int status, const char* code, const char* message) {
    error_ = {status, code, message};
    return State::failed;
  }
  HeadLimits limits_;
  std::size_t begin_ = 0;       // first byte of the start line (after tolerated leading CRLFs)
  std::size_t pos_ = 0;         // where to continue searching for LF
  std::size_t line_start_ = 0;  // start of the current line
  std::size_t end_ = 0;
  std::size_t fields_ = 0;
  bool start_line_done_ = false;
  HttpError error_{};
};

}  // namespace obsgw::http
