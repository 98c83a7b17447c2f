#pragma once
/// @file
/// Request and response heads as the gateway sees them after strict parsing.

#include <cstdint>
#include <string>

#include "obsgw/headers.hpp"

namespace obsgw {

/// How a message body is delimited on the wire.
enum class BodyFraming : std::uint8_t {
  none,            ///< no body
  content_length,  ///< exactly `content_length` bytes
  chunked,         ///< Transfer-Encoding: chunked
  until_close,     ///< responses only: the body ends when the connection closes
};

/// A request head. The parser fills every field; policies edit `headers`, `path` and `query`,
/// and the forwarder sends what they leave.
struct RequestHead {
  std::string method;
  std::string path;       ///< origin-form path, dot-segments removed, still percent-encoded
  std::string query;      ///< without the leading '?', empty when absent
  std::string authority;  ///< host[:port] from the absolute-form target or the Host header
  int version_minor = 1;  ///< HTTP/1.<version_minor>
  Headers headers;

  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;         ///< the client allows the connection to be reused
  bool expect_continue = false;   ///< `Expect: 100-continue` was sent
  bool websocket_upgrade = false; ///< `Connection: upgrade` + `Upgrade: websocket`

  /// Host part of `authority`, lower-cased, without port.
  std::string host() const;
  /// Resets every field, keeping the memory of strings and headers for the next request.
  void clear() noexcept;
  /// path + ('?' + query if any)
  std::string target() const;
};

/// A response head, as received from an upstream or built by the gateway.
struct ResponseHead {
  int status = 200;
  std::string reason;  ///< reason phrase; empty means the standard one
  int version_minor = 1;
  Headers headers;

  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;

  /// Resets every field, keeping the memory for the next response.
  void clear() noexcept;
};

/// Standard reason phrase for a status code ("Unknown" when it has none).
const char* reason_phrase(int status) noexcept;

}  // namespace obsgw
