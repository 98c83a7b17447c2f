#pragma once
// One client connection: the keep-alive loop that reads request heads, hands each exchange to a handler, and
// implements the Downstream side (request body in, response out) with limits and deadlines.

#include <array>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/chunked_decoder.hpp"
#include "http/request_parser.hpp"
#include "net/watchdog.hpp"
#include "obsgw/downstream.hpp"
#include "obsgw/exchange.hpp"
#include "obsgw/server_options.hpp"
#include "obsgw/verdict.hpp"
#include "server/errors.hpp"
#include "signing/sha256_stream.hpp"
#include "util/spare_buffers.hpp"

namespace obsgw::detail {

class ClientConnection;

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Answers one request through `down`. Must not throw.
  virtual asio::awaitable<void> handle(Exchange& ex, ClientConnection& down) = 0;
  // A request the connection refused before it could be handled (malformed, over a limit): for logs and metrics.
  virtual void on_refused(Exchange&) noexcept {}
};

class ClientConnection final : public Downstream {
 public:
  ClientConnection(Transport transport, ConnectionInfo info, const ServerOptions& options, RequestHandler& handler);
  ~ClientConnection() override;

  // The keep-alive loop; returns when the connection is closed.
  asio::awaitable<void> run();

  // Draining: close now if waiting for a request, otherwise after the current response.
  void begin_drain() noexcept;
  // Deadline passed: cancel whatever is pending.
  void abort() noexcept;

  // Downstream
  asio::awaitable<std::string_view> read_body(std::error_code& ec) override;
  bool body_complete() const noexcept override { return body_done_; }
  asio::awaitable<void> write_head(ResponseHead& head, std::error_code& ec) override;
  asio::awaitable<void> write_body(std::string_view data, std::error_code& ec) override;
  asio::awaitable<void> finish(std::error_code& ec) override;
  bool head_sent() const noexcept override { return head_sent_; }
  asio::awaitable<void> respond_error(int status, std::string_view code, std::string_view message,
                                      std::error_code& ec) override;
  asio::awaitable<void> tunnel(Transport& upstream, std::string_view upstream_pending,
                               std::chrono::milliseconds idle_timeout, std::error_code& ec) override;

  // A JSON error response with extra headers (rejections carry WWW-Authenticate, Retry-After, ...) and extra
  // members of the body.
  asio::awaitable<void> respond(int status, std::string_view code, std::string_view message,
                                const std::vector<HeaderField>& extra_headers, std::error_code& ec,
                                const std::vector<Rejection::Detail>& details = {});
  // A complete response with a body.
  asio::awaitable<void> respond_with_body(ResponseHead head, std::string_view body, std::error_code& ec);

  // Reads the whole body into a string, up to `limit` bytes.
  // `digest`, when given, is fed each piece as it arrives.
  asio::awaitable<std::string> read_whole_body(std::size_t limit, std::error_code& ec,
                                               signing::Sha256Stream* digest = nullptr);

 private:
  // A read into the free end of buf_, in two halves so that no coroutine frame is made for it:
  //   if (!end_read(co_await start_read(timeout, ec), ec)) ...
  asio::awaitable<std::size_t> start_read(std::chrono::milliseconds timeout, std::error_code& ec,
                                          std::size_t at_most = SIZE_MAX);
  bool end_read(std::size_t n, const std::error_code& ec) noexcept;
  // Gives buf_, head_ and out_ to the thread's spares before the wait for the next request.
  void release_request_memory() noexcept;
  // After a wait for readability (plain TCP): takes a head buffer and reads into it what has arrived. False when
  // nothing had (a stale readiness): the buffer goes back and the wait starts again.
  bool read_first_bytes(std::error_code& ec);
  // The wait for the next request on TLS: the first bytes arrive in tls_idle_buf_, and end_tls_idle_read moves them
  // into a buffer taken from the spares.
  asio::awaitable<std::size_t> start_tls_idle_read(std::chrono::milliseconds timeout, std::error_code& ec);
  bool end_tls_idle_read(std::size_t n, const std::error_code& ec);
  // Streams a body through a kBodySize buffer, keeping the bytes not yet consumed.
  void use_body_buffer();
  void make_room(std::size_t min_free);
  // Writes out_ (a pending head) followed by up to three more pieces, in one gathered write:
  //   if (!write_at_once(a, b, c, ec)) co_await write_rest(ec);
  //   end_write(ec);
  // write_at_once() writes what the socket takes without waiting and says whether that was all (or failed);
  // only a response larger than the socket's free buffer goes through the reactor.
  bool write_at_once(std::string_view a, std::string_view b, std::string_view c, std::error_code& ec);
  asio::awaitable<std::size_t> write_rest(std::error_code& ec);
  void end_write(const std::error_code& ec) noexcept;
  asio::awaitable<void> serve_request();             // the head in head_, to the end of its response
  asio::awaitable<void> refuse_malformed_request();  // parser_ failed: the error answer, then the connection ends
  asio::awaitable<bool> discard_body();
  std::string_view fail_body(GatewayError why, std::error_code& ec) noexcept;
  asio::awaitable<void> close_gracefully();
  void serialize_head(ResponseHead& head);

  Transport transport_;
  ConnectionInfo info_;
  const ServerOptions& options_;
  RequestHandler& handler_;
  net::Watchdog dog_;
  http::RequestParser parser_;

  // Parsed into; lent to each Exchange and taken back. Its memory, and out_'s, is given to the thread's spares while
  // the connection waits for its next request (SpareRequestState).
  RequestHead head_;
  util::IoBuffer buf_;  // given back a moment after a response (see run() and util::SpareBuffers)
  std::size_t begin_ = 0, end_ = 0;
  // TLS only: the first bytes of the next request. Big enough for most heads (a bearer token included) in one
  // read; a longer head costs one more read.
  using TlsIdleBuffer = std::array<char, 2048>;
  std::unique_ptr<TlsIdleBuffer> tls_idle_buf_;

  Exchange* exchange_ = nullptr;
  // request body state
  BodyFraming body_framing_ = BodyFraming::none;
  std::uint64_t body_remaining_ = 0;
  std::uint64_t body_read_ = 0;
  bool body_done_ = true;
  bool body_topped_up_ = false;  // the first piece was topped up (see read_body)
  bool continue_sent_ = false;
  std::optional<GatewayError> body_error_;  // the body could not be read (malformed, too large, too slow)
  std::unique_ptr<http::ChunkedDecoder> chunked_;  // made for the first chunked body: most clients never send one
  // response state
  std::string out_;           // serialized head waiting to go out with the first body bytes
  std::array<asio::const_buffer, 4> gather_;  // the buffers of the write in progress (one at a time)
  std::size_t gathered_sent_ = 0;              // bytes of gather_ that write_at_once() got out
  bool head_sent_ = false;  // the head went to the socket (not merely serialized)
  bool response_policies_failed_ = false;
  bool response_done_ = false;
  bool chunked_out_ = false;
  bool no_body_out_ = false;
  bool keep_alive_ = true;
  bool broken_ = false;
  bool idle_ = false;
  bool draining_ = false;
};

}  // namespace obsgw::detail
