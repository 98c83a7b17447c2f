#pragma once
/// @file
/// The client side of an exchange, as a Forwarder sees it: the request body to read and the response to write.

#include <chrono>
#include <string_view>
#include <system_error>

#include <asio/awaitable.hpp>

#include "obsgw/http_message.hpp"
#include "obsgw/transport.hpp"

namespace obsgw {

class Downstream {
 public:
  virtual ~Downstream() = default;

  /// Next piece of the decoded request body; an empty view means the body is complete.
  /// Sends `100 Continue` first when the client asked for it. The view stays valid until the next call.
  /// Fails with a 4xx-mapped error when the body is malformed, too large or too slow.
  virtual asio::awaitable<std::string_view> read_body(std::error_code& ec) = 0;
  /// True once the whole request body was read (or there was none).
  virtual bool body_complete() const noexcept = 0;

  /// Sends the response head. The route's response policies run first; framing headers
  /// (Content-Length / Transfer-Encoding / Connection) are the downstream's job, from `head.framing`.
  virtual asio::awaitable<void> write_head(ResponseHead& head, std::error_code& ec) = 0;
  virtual asio::awaitable<void> write_body(std::string_view data, std::error_code& ec) = 0;
  /// Ends the response body.
  virtual asio::awaitable<void> finish(std::error_code& ec) = 0;
  /// True once write_head() was called: after that, errors can no longer become an error response.
  virtual bool head_sent() const noexcept = 0;

  /// Sends a complete JSON error response `{"error":code,"message":message,"request_id":...}`.
  virtual asio::awaitable<void> respond_error(int status, std::string_view code, std::string_view message,
                                              std::error_code& ec) = 0;

  /// After a `101 Switching Protocols` head was written: relays bytes both ways between the client and
  /// `upstream` (whose already-read bytes are `upstream_pending`) until either side closes or nothing moves
  /// for `idle_timeout`.
  virtual asio::awaitable<void> tunnel(Transport& upstream, std::string_view upstream_pending,
                                       std::chrono::milliseconds idle_timeout, std::error_code& ec) = 0;
};

}  // namespace obsgw
