#pragma once
// Strict HTTP/1.1 request head parser (RFC 9112). It refuses every shape that two HTTP implementations could
// read differently (request smuggling), and anything malformed, with the status the client should get.

#include <cstddef>
#include <string_view>

#include "http/head_scanner.hpp"
#include "http/http_error.hpp"
#include "obsgw/http_message.hpp"
#include "obsgw/server_options.hpp"

namespace obsgw::http {

class RequestParser {
 public:
  enum class State { incomplete, complete, failed };

  explicit RequestParser(const HttpLimits& limits);

  // `data`: every buffered byte of this request so far. On `complete`, head_size() bytes are the head
  // (including tolerated leading CRLFs) and `out` is filled.
  State parse(std::string_view data, RequestHead& out);
  std::size_t head_size() const noexcept { return scanner_.end(); }
  const HttpError& error() const noexcept { return error_; }
  void reset() noexcept;

 private:
  State fail(int status, const char* code, const char* message) {
    error_ = {status, code, message};
    return State::failed;
  }
  State parse_request_line(std::string_view line, RequestHead& out);
  State parse_target(std::string_view target, std::string_view method, RequestHead& out);
  State parse_fields(std::string_view block, RequestHead& out);
  State apply_semantics(RequestHead& out);

  HttpLimits limits_;
  HeadScanner scanner_;
  HttpError error_{};
};

// Removes "." and ".." segments (RFC 3986 5.2.4), also when written as %2e. Returns false when the
// path would climb above the root.
bool normalize_path(std::string& path);

// Brings a path to the one form that the router matches and the upstream receives, so that no spelling of a
// path reaches an upstream (which may decode or merge it) past a route meant to guard it: percent-encoded
// unreserved characters are decoded (%61 -> a), runs of '/' become one, dot-segments are removed. Refuses (returns
// the reason) an encoded '/', '\' or NUL, a ';' in a dot segment (`..;` is `..` to some servers), and a path
// that climbs above the root. Returns nullptr when the path is fine.
const char* canonicalize_path(std::string& path);

// Validates a Host header value or an absolute-form authority: reg-name or IP literal, optional port.
bool is_valid_authority(std::string_view authority) noexcept;

}  // namespace obsgw::http
