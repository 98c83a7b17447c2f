#pragma once
// Parser for upstream response heads. Upstreams are trusted more than clients, but a malformed or
// ambiguous response still becomes a 502 rather than something relayed half-understood.

#include <cstddef>
#include <string_view>

#include "http/head_scanner.hpp"
#include "http/http_error.hpp"
#include "obsgw/http_message.hpp"

namespace obsgw::http {

class ResponseParser {
 public:
  enum class State { incomplete, complete, failed };

  explicit ResponseParser(std::size_t max_head_bytes = 64 * 1024);

  // `request_method` decides bodiless responses (HEAD).
  State parse(std::string_view data, std::string_view request_method, ResponseHead& out);
  std::size_t head_size() const noexcept { return scanner_.end(); }
  const HttpError& error() const noexcept { return error_; }
  void reset() noexcept;

 private:
  State fail(const char* message) {
    error_ = {502, "bad_upstream_response", message};
    return State::failed;
  }
  HeadScanner scanner_;
  HttpError error_{};
};

}  // namespace obsgw::http
