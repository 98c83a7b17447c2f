#include "server/client_connection.hpp"

#include <array>
#include <cstring>

#include <asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include "http/field_writer.hpp"
#include "obsgw/router.hpp"
#include "server/errors.hpp"
#include "server/metrics.hpp"
#include "server/spare_request_state.hpp"
#include "util/decimal.hpp"
#include "util/json_escape.hpp"
#include "util/request_id.hpp"

namespace obsgw::detail {

namespace {
// An unread request body up to this size is read and dropped to keep the connection; beyond it we close.
constexpr std::uint64_t kMaxDiscard = 64 * 1024;
constexpr std::chrono::milliseconds kCloseLinger{1000};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// How long a keep-alive connection keeps its request memory after a response (see run()).
constexpr std::chrono::milliseconds kKeepMemoryWhileIdle{1000};
// The first read of a busy connection's next request: most heads (a bearer token included) fit, and a body that
// came with its head is moved into a body buffer (read_body) by at most this much copying.
constexpr std::size_t kFirstRead = 2048;

void append_content_length(std::string& out, std::uint64_t n) {
  out.append("Content-Length: ");
  util::append_decimal(out, n);
  out.append("\r\n");
}

bool is_framing_header(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "connection") ||
         iequals(name, "keep-alive");
}
}  // namespace

ClientConnection::ClientConnection(Transport transport, ConnectionInfo info, const ServerOptions& options,
                                   RequestHandler& handler)
    : transport_(std::move(transport)),
      info_(std::move(info)),
      options_(options),
      handler_(handler),
      dog_(transport_.get_executor()),
      parser_(options.limits) {
  Metrics::instance().conn().active.fetch_add(1, std::memory_order_relaxed);
  Metrics::instance().conn().accepted.fetch_add(1, std::memory_order_relaxed);
}

ClientConnection::~ClientConnection() {
  // May run on another shard than the constructor only if the connection moved threads, which it never does.
  Metrics::instance().conn().active.fetch_sub(1, std::memory_order_relaxed);
}

void ClientConnection::begin_drain() noexcept {
  draining_ = true;
  if (idle_) transport_.cancel();
}

void ClientConnection::abort() noexcept {
  broken_ = true;
  transport_.close();
}

void ClientConnection::make_room(std::size_t min_free) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buf_.size() - end_ >= min_free) return;
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buf_.size() - end_ < min_free) buf_.resize(end_ + min_free);
}

asio::awaitable<std::size_t> ClientConnection::start_read(std::chrono::milliseconds timeout, std::error_code& ec,
                                                          std::size_t at_most) {
  dog_.arm(timeout, &transport_);
  return transport_.read_some(asio::buffer(buf_.data() + end_, std::min(at_most, buf_.size() - end_)), ec);
}

bool ClientConnection::end_read(std::size_t n, const std::error_code& ec) noexcept {
  dog_.disarm();
  end_ += n;
  return !ec;
}

void ClientConnection::release_request_memory() noexcept {
  util::SpareBuffers::give_back(std::move(buf_));
  buf_ = {};
  begin_ = end_ = 0;
  SpareRequestState::give_back(head_, out_);
}

bool ClientConnection::read_first_bytes(std::error_code& ec) {
  buf_ = util::SpareBuffers::take(util::SpareBuffers::kHeadSize);
  const std::size_t n = transport_.read_now(asio::buffer(buf_), ec);
  if (n == 0) {  // the end of the stream, an error, or a stale readiness with nothing behind it
    util::SpareBuffers::give_back(std::move(buf_));
    buf_ = {};
    return static_cast<bool>(ec);
  }
  end_ = n;
  SpareRequestState::take(head_, out_);
  return true;
}

asio::awaitable<std::size_t> ClientConnection::start_tls_idle_read(std::chrono::milliseconds timeout,
                                                                   std::error_code& ec) {
  if (!tls_idle_buf_) tls_idle_buf_ = std::make_unique<TlsIdleBuffer>();
  dog_.arm(timeout, &transport_);
  return transport_.read_some(asio::buffer(*tls_idle_buf_), ec);
}

bool ClientConnection::end_tls_idle_read(std::size_t n, const std::error_code& ec) {
  dog_.disarm();
  if (n > 0) {
    buf_ = util::SpareBuffers::take(util::SpareBuffers::kHeadSize);
    std::memcpy(buf_.data(), tls_idle_buf_->data(), n);
    end_ = n;
    SpareRequestState::take(head_, out_);
  }
  return !ec;
}

void ClientConnection::use_body_buffer() {
  auto body = util::SpareBuffers::take(util::SpareBuffers::kBodySize);
  const std::size_t pending = end_ - begin_;  // less than kBodySize: the old buffer was smaller
  std::memcpy(body.data(), buf_.data() + begin_, pending);
  util::SpareBuffers::give_back(std::exchange(buf_, std::move(body)));
  begin_ = 0;
  end_ = pending;
}

asio::awaitable<void> ClientConnection::run() {
  std::error_code ec;
  if (transport_.is_tls()) {
    dog_.arm(options_.timeouts.tls_handshake, &transport_);
    co_await transport_.handshake_as_server(ec);
    dog_.disarm();
    if (ec) {
      transport_.close();
      co_return;
    }
  }
  const std::size_t head_buffer_limit = options_.limits.max_header_bytes + 4096;
  while (!broken_) {
    // Wait for the first byte of the next request (pipelined bytes may already be here).
    if (begin_ == end_) {
      if (draining_) break;
      idle_ = true;
      begin_ = end_ = 0;
      std::chrono::milliseconds idle_left = options_.timeouts.idle;
      bool ok = false;
      bool keep_waiting = true;
      if (!buf_.empty() && !transport_.is_tls()) {
        // A busy connection's next request comes soon: for a moment it keeps its memory and simply reads, the
        // cheapest wait there is (an attempt that finds nothing yet costs one system call, as the readiness wait
        // below does, but that wait also goes through epoll_ctl and the reactor for every request). A body
        // buffer goes back first: the wait needs a head buffer at most. Not on TLS: a read cancelled at the end of
        // the window could cut short a record the TLS engine was writing meanwhile (a key update's answer).
        if (buf_.size() != util::SpareBuffers::kHeadSize) {
          util::SpareBuffers::give_back(std::move(buf_));
          buf_ = util::SpareBuffers::take(util::SpareBuffers::kHeadSize);
        }
        const auto window = std::min(kKeepMemoryWhileIdle, idle_left);
        ok = end_read(co_await start_read(window, ec, kFirstRead), ec);
        keep_waiting = !ok && dog_.expired() && !draining_ && window < idle_left;
        idle_left -= window;
      }
      if (keep_waiting) {
        // Idle for longer: the connection holds no request memory. Its buffer, parsed head and response head go
        // back to the thread's spares, and plain TCP waits for readability without a buffer, taking one only when
        // the next request arrives. So ten thousand idle clients hold none of it. TLS reads into a small buffer
        // of its own instead: decrypted bytes may already wait inside the TLS stream, where no readiness shows.
        release_request_memory();
        ec = {};  // the window's cancelled read
        if (transport_.is_tls()) {
          ok = end_tls_idle_read(co_await start_tls_idle_read(idle_left, ec), ec);
        } else {
          const auto idle_until = net::coarse_now() + idle_left;
          bool arrived = false;
          while (!arrived && !ec && !draining_) {
            // Again only after a stale readiness (nothing to read): the idle timeout still counts from the start.
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(idle_until - net::coarse_now());
            dog_.arm(std::max(left, std::chrono::milliseconds(1)), &transport_);
            co_await transport_.wait_readable(ec);
            dog_.disarm();
            if (!ec) arrived = read_first_bytes(ec);
          }
          ok = arrived && !ec;
        }
      }
      idle_ = false;
      if (!ok) break;  // closed, idle timeout or drain
    }
    parser_.reset();
    RequestHead& head = head_;
    http::RequestParser::State state;
    auto head_deadline = net::coarse_now() + options_.timeouts.header;
    while ((state = parser_.parse({buf_.data() + begin_, end_ - begin_}, head)) ==
           http::RequestParser::State::incomplete) {
      if (end_ == buf_.size()) {
        if (buf_.size() - begin_ >= head_buffer_limit) break;  // the scanner refuses before this
        make_room(std::min(buf_.size(), head_buffer_limit - (end_ - begin_)));
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(head_deadline - net::coarse_now());
      if (left.count() <= 0 || !end_read(co_await start_read(left, ec), ec)) {
        if (dog_.expired() || left.count() <= 0) {
          std::error_code wec;
          co_await respond(408, "request_timeout", "request head not received in time", {}, wec);
        }
        broken_ = true;
        break;
      }
    }
    if (broken_) break;
    if (state == http::RequestParser::State::failed) {
      co_await refuse_malformed_request();
      break;
    }
    begin_ += parser_.head_size();
    Metrics::instance().conn().requests.fetch_add(1, std::memory_order_relaxed);

    body_framing_ = head.framing;
    body_remaining_ = head.framing == BodyFraming::content_length ? head.content_length : 0;
    body_read_ = 0;
    body_topped_up_ = false;
    body_done_ = head.framing == BodyFraming::none;
    continue_sent_ = false;
    body_error_.reset();
    if (chunked_) chunked_->reset();
    out_.clear();
    head_sent_ = response_done_ = chunked_out_ = no_body_out_ = response_policies_failed_ = false;
    keep_alive_ = head.keep_alive && !draining_;

    co_await serve_request();

    if (broken_ || !response_done_ || !keep_alive_) break;
    if (!body_done_ && !co_await discard_body()) break;
  }
  co_await close_gracefully();
}

// Coroutines of their own, so that an Exchange lives in a frame only while a request is served: run()'s frame
// stays with an idle connection, and every byte of it is multiplied by the idle connections.
asio::awaitable<void> ClientConnection::serve_request() {
  Exchange ex(std::move(head_), info_);
  exchange_ = &ex;
  co_await handler_.handle(ex, *this);
  exchange_ = nullptr;
  head_ = std::move(ex.request());
}

asio::awaitable<void> ClientConnection::refuse_malformed_request() {
  const auto err = parser_.error();
  Metrics::instance().parse_errors.fetch_add(1, std::memory_order_relaxed);
  Metrics::instance().rejections.add(err.code);
  keep_alive_ = false;
  body_done_ = false;
  // The refusal gets a request id and an access log line like any other answer.
  Exchange ex(std::move(head_), info_);
  ex.set_request_id(util::generate_request_id());
  ex.outcome.rejected_by = err.code;
  exchange_ = &ex;
  std::error_code wec;
  co_await respond(err.status, err.code, err.message, {}, wec);
  exchange_ = nullptr;
  handler_.on_refused(ex);
}

asio::awaitable<bool> ClientConnection::discard_body() {
  std::error_code ec;
  std::uint64_t dropped = 0;
  while (!body_done_) {
    auto piece = co_await read_body(ec);
    if (ec) co_return false;
    dropped += piece.size();
    if (dropped > kMaxDiscard) co_return false;
  }
  co_return true;
}

asio::awaitable<void> ClientConnection::close_gracefully() {
  if (!transport_.is_open()) co_return;
  // Half-close, then drain what the client still sends for a moment, so that unread request bytes do not
  // turn our close into a reset that destroys the response in flight.
  dog_.arm(kCloseLinger, &transport_);
  co_await transport_.shutdown();
  std::error_code ec;
  std::size_t total = 0;
  // What arrives now is thrown away, so every connection of the thread can read into one sink: a sink in this
  // frame would cost each of ten thousand connections draining at once another 4 KB.
  thread_local std::array<char, 4096> sink;
  while (!ec && total < (1u << 20)) total += co_await transport_.read_some(asio::buffer(sink), ec);
  dog_.disarm();
  transport_.close();
}

// ---- request body ----

std::string_view ClientConnection::fail_body(GatewayError why, std::error_code& ec) noexcept {
  // The request cannot be read further, but the client can still be told why: the connection stays
  // writable and is closed after the response.
  body_error_ = why;
  keep_alive_ = false;
  ec = why;
  return {};
}

asio::awaitable<std::string_view> ClientConnection::read_body(std::error_code& ec) {
  ec = {};
  if (body_error_) {
    ec = *body_error_;
    co_return std::string_view{};
  }
  if (body_done_) co_return std::string_view{};
  if (exchange_ && exchange_->request().expect_continue && !continue_sent_ && begin_ == end_) {
    continue_sent_ = true;
    dog_.arm(options_.timeouts.write, &transport_);
    co_await transport_.write(asio::buffer(kContinue), ec);
    dog_.disarm();
    if (ec) {
      broken_ = true;
      ec = GatewayError::client_closed;
      co_return std::string_view{};
    }
  }
  continue_sent_ = true;
  const std::uint64_t limit = options_.limits.max_body_bytes;
  while (true) {
    // The first piece, when it is shorter than the body, is topped up with whatever else has already arrived
    // (never waiting for more): a body that came with its head in several segments then goes upstream in one
    // write, together with the head. Once per body: later pieces come from awaited reads, which already took
    // everything there was.
    if (!body_topped_up_ && begin_ < end_ && body_framing_ == BodyFraming::content_length &&
        end_ - begin_ < body_remaining_ && end_ - begin_ < util::SpareBuffers::kBodySize / 2 && !transport_.is_tls()) {
      body_topped_up_ = true;
      if (buf_.size() < util::SpareBuffers::kBodySize) use_body_buffer();
      else make_room(util::SpareBuffers::kBodySize / 2);
      std::error_code ignored;  // nothing yet, or an error the next awaited read reports
      end_ += transport_.read_now(asio::buffer(buf_.data() + end_, buf_.size() - end_), ignored);
    }
    if (begin_ < end_) {
      if (body_framing_ == BodyFraming::content_length) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(body_remaining_, end_ - begin_));
        std::string_view piece(buf_.data() + begin_, n);
        begin_ += n;
        body_remaining_ -= n;
        body_read_ += n;
        if (body_remaining_ == 0) body_done_ = true;
        if (exchange_) exchange_->outcome.bytes_in += n;
        co_return piece;
      }
      if (!chunked_) chunked_ = std::make_unique<http::ChunkedDecoder>(400);
      auto step = chunked_->decode({buf_.data() + begin_, end_ - begin_});
      if (step.error) {
        co_return fail_body(GatewayError::bad_body_encoding, ec);
      }
      begin_ += step.consumed;
      body_read_ += step.data.size();
      if (body_read_ > limit) co_return fail_body(GatewayError::body_too_large, ec);
      if (step.done) body_done_ = true;
      if (exchange_) exchange_->outcome.bytes_in += step.data.size();
      if (!step.data.empty() || body_done_) co_return step.data;
    }
    if (buf_.size() < util::SpareBuffers::kBodySize) use_body_buffer();
    else make_room(util::SpareBuffers::kBodySize / 2);
    if (!end_read(co_await start_read(options_.timeouts.body_read, ec), ec)) {
      if (dog_.expired()) co_return fail_body(GatewayError::body_timeout, ec);
      broken_ = true;  // the client is gone
      ec = GatewayError::client_closed;
      co_return std::string_view{};
    }
  }
}

asio::awaitable<std::string> ClientConnection::read_whole_body(std::size_t limit, std::error_code& ec,
                                                               signing::Sha256Stream* digest) {
  std::string body;
  if (body_framing_ == BodyFraming::content_length) {
    if (body_remaining_ > limit) {
      ec = GatewayError::body_too_large;
      co_return body;
    }
    body.reserve(static_cast<std::size_t>(body_remaining_));
  }
  while (!body_done_) {
    auto piece = co_await read_body(ec);
    if (ec) co_return body;
    if (body.size() + piece.size() > limit) {
      ec = GatewayError::body_too_large;
      co_return body;
    }
    body.append(piece);
    if (digest) digest->update(piece);
  }
  co_return body;
}

// ---- response ----

void ClientConnection::serialize_head(ResponseHead& head) {
  const RequestHead* req = exchange_ ? &exchange_->request() : nullptr;
  const bool head_request = req && req->method == "HEAD";
  const int status = head.status;
  const bool bodiless_status = status < 200 || status == 204 || status == 304;
  // An unread request body we cannot cheaply skip forces a close.
  if (!body_done_) {
    bool skippable = body_framing_ == BodyFraming::content_length && body_remaining_ <= kMaxDiscard &&
                     !(req && req->expect_continue && !continue_sent_);
    if (!skippable) keep_alive_ = false;
  }
  if (draining_) keep_alive_ = false;
  if (status == 101) keep_alive_ = false;

  out_.clear();
  char digits[3] = {static_cast<char>('0' + status / 100 % 10), static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10)};
  out_.append("HTTP/1.1 ").append(digits, 3).push_back(' ');
  if (head.reason.empty()) out_.append(reason_phrase(status));
  else out_.append(head.reason);
  out_.append("\r\n");
  http::append_fields(out_, head.headers, [status](std::string_view name) {
    if (status == 101) return iequals(name, "content-length") || iequals(name, "transfer-encoding");
    return is_framing_header(name);
  });
  no_body_out_ = head_request || bodiless_status;
  chunked_out_ = false;
  if (status == 101) {
    // Connection/Upgrade headers came from the upstream and are relayed as they are.
  } else if (bodiless_status) {
    if (status == 304 && head.content_length) append_content_length(out_, head.content_length);
  } else if (head.framing == BodyFraming::content_length || (head_request && head.content_length)) {
    append_content_length(out_, head.content_length);
  } else if (head.framing == BodyFraming::none) {
    if (!head_request) out_.append("Content-Length: 0\r\n");
  } else if (req && req->version_minor == 1) {
    if (!head_request) {
      out_.append("Transfer-Encoding: chunked\r\n");
      chunked_out_ = true;
    }
  } else {
    keep_alive_ = false;  // HTTP/1.0 client: the body ends when we close
  }
  if (status != 101) {
    if (!keep_alive_) out_.append("Connection: close\r\n");
    else if (req && req->version_minor == 0) out_.append("Connection: keep-alive\r\n");
  }
  out_.append("\r\n");
}

bool ClientConnection::write_at_once(std::string_view a, std::string_view b, std::string_view c, std::error_code& ec) {
  if (!out_.empty()) head_sent_ = true;
  gather_ = {asio::buffer(out_), asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size()),
             asio::buffer(c.data(), c.size())};
  return transport_.write_all_now(gather_, gathered_sent_, ec);
}

asio::awaitable<std::size_t> ClientConnection::write_rest(std::error_code& ec) {
  // Not a coroutine: the caller awaits the write itself, which saves a frame per response. Only a write that
  // must wait for the client has a deadline (a slow reader).
  dog_.arm(options_.timeouts.write, &transport_);
  return transport_.write_rest(gather_, gathered_sent_, ec);
}

void ClientConnection::end_write(const std::error_code& ec) noexcept {
  dog_.disarm();
  out_.clear();
  if (ec) broken_ = true;
}

asio::awaitable<void> ClientConnection::write_head(ResponseHead& head, std::error_code& ec) {
  ec = {};
  if (exchange_) {
    // The gateway's own response headers replace the upstream's of the same name (RateLimit-* above all: two
    // sets of figures would contradict each other).
    const Headers& ours = exchange_->response_headers;
    if (!ours.empty())  // one pass over the upstream's fields, however many of its own the gateway sets
      head.headers.remove_if([&](const HeaderView& f) {
        for (const auto& o : ours)
          if (iequals(o.name, f.name)) return true;
        return false;
      });
    for (const auto& f : exchange_->response_headers) head.headers.add(f.name, f.value);
    if (!exchange_->request_id().empty() && !head.headers.contains("x-request-id"))
      head.headers.add("X-Request-Id", exchange_->request_id());
    if (const Route* r = exchange_->route(); r && !response_policies_failed_) {
      try {
        for (const auto& p : r->policies) p->on_response(*exchange_, head);
      } catch (...) {
        // The pipeline answers 500 instead; that answer must not run the failing policy again.
        response_policies_failed_ = true;
        throw;
      }
    }
    exchange_->outcome.status = head.status;
  }
  serialize_head(head);  // kept in out_ until the first write: until then an error can still replace it
  if (head.status == 101) {
    if (!write_at_once({}, {}, {}, ec)) co_await write_rest(ec);
    end_write(ec);
  }
}

asio::awaitable<void> ClientConnection::write_body(std::string_view data, std::error_code& ec) {
  ec = {};
  if (broken_) {
    ec = GatewayError::client_closed;
    co_return;
  }
  if (data.empty() || no_body_out_) co_return;
  if (exchange_) exchange_->outcome.bytes_out += data.size();
  if (chunked_out_) {
    char size_line[24];
    auto end = fmt::format_to(size_line, "{:x}\r\n", data.size());
    std::string_view size(size_line, static_cast<std::size_t>(end - size_line));
    if (!write_at_once(size, data, "\r\n", ec)) co_await write_rest(ec);
  } else {
    if (!write_at_once(data, {}, {}, ec)) co_await write_rest(ec);
  }
  end_write(ec);
}

asio::awaitable<void> ClientConnection::finish(std::error_code& ec) {
  ec = {};
  if (broken_) {
    ec = GatewayError::client_closed;
    co_return;
  }
  if (chunked_out_ || !out_.empty()) {
    std::string_view last_chunk = chunked_out_ ? std::string_view("0\r\n\r\n") : std::string_view{};
    if (!write_at_once(last_chunk, {}, {}, ec)) co_await write_rest(ec);
    end_write(ec);
  }
  if (!ec) response_done_ = true;
}

asio::awaitable<void> ClientConnection::respond_with_body(ResponseHead head, std::string_view body, std::error_code& ec) {
  head.framing = BodyFraming::content_length;
  head.content_length = body.size();
  co_await write_head(head, ec);
  if (!ec) co_await write_body(body, ec);
  if (!ec) co_await finish(ec);
}

asio::awaitable<void> ClientConnection::respond(int status, std::string_view code, std::string_view message,
                                                const std::vector<HeaderField>& extra, std::error_code& ec,
                                                const std::vector<Rejection::Detail>& details) {
  std::string body = "{\"error\":";
  util::append_json_string(body, code);
  body += ",\"message\":";
  util::append_json_string(body, message);
  for (const auto& d : details) {
    if (d.name == "error" || d.name == "message" || d.name == "request_id") continue;  // the body's own members
    body += ',';
    util::append_json_string(body, d.name);
    body += ':';
    body += d.json;
  }
  if (exchange_ && !exchange_->request_id().empty()) {
    body += ",\"request_id\":";
    util::append_json_string(body, exchange_->request_id());
  }
  body += "}\n";
  ResponseHead head;
  head.status = status;
  head.headers.add("Content-Type", "application/json");
  head.headers.add("Cache-Control", "no-store");
  head.headers.add("X-Content-Type-Options", "nosniff");
  for (const auto& f : extra) head.headers.add(f.name, f.value);
  if (status == 408 || status == 400 || status == 431 || status == 414 || status == 413) keep_alive_ = false;
  co_await respond_with_body(std::move(head), body, ec);
}

asio::awaitable<void> ClientConnection::respond_error(int status, std::string_view code, std::string_view message,
                                                      std::error_code& ec) {
  co_await respond(status, code, message, {}, ec);
}

// ---- upgrade tunnel ----

asio::awaitable<void> ClientConnection::tunnel(Transport& upstream, std::string_view upstream_pending,
                                               std::chrono::milliseconds idle_timeout, std::error_code& ec) {
  using namespace asio::experimental::awaitable_operators;
  ec = {};
  keep_alive_ = false;
  std::string client_pending(buf_.data() + begin_, end_ - begin_);
  begin_ = end_ = 0;
  if (!upstream_pending.empty()) {
    dog_.arm(options_.timeouts.write, &transport_);
    co_await transport_.write(asio::buffer(upstream_pending.data(), upstream_pending.size()), ec);
    if (ec) co_return;
  }
  if (!client_pending.empty()) {
    dog_.arm(options_.timeouts.write, &upstream);
    co_await upstream.write(asio::buffer(client_pending), ec);
    if (ec) co_return;
  }
  dog_.arm(idle_timeout, &transport_, &upstream);
  auto pump = [this, idle_timeout, &upstream](Transport& from, Transport& to) -> asio::awaitable<void> {
    std::vector<char> buf(16 * 1024);
    std::error_code e;
    while (true) {
      std::size_t n = co_await from.read_some(asio::buffer(buf), e);
      if (e) co_return;
      dog_.arm(idle_timeout, &transport_, &upstream);
      co_await to.write(asio::buffer(buf.data(), n), e);
      if (e) co_return;
      if (exchange_ && &from == &upstream) exchange_->outcome.bytes_out += n;
      if (exchange_ && &from == &transport_) exchange_->outcome.bytes_in += n;
    }
  };
  co_await (pump(transport_, upstream) || pump(upstream, transport_));
  dog_.disarm();
  response_done_ = true;
  broken_ = true;  // the connection is spent
}

}  // namespace obsgw::detail
