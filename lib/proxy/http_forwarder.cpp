// The HTTP/1.1 reverse proxy behind make_http_forwarder().

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <deque>
#include <optional>
#include <random>
#include <stdexcept>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "http/char_classes.hpp"
#include "http/chunked_decoder.hpp"
#include "http/field_writer.hpp"
#include "http/response_parser.hpp"
#include "net/watchdog.hpp"
#include "obsgw/forwarder.hpp"
#include "obsgw/router.hpp"
#include "proxy/endpoint_set.hpp"
#include "proxy/health_checker.hpp"
#include "proxy/hop_by_hop.hpp"
#include "proxy/upstream_url.hpp"
#include "server/errors.hpp"
#include "server/metrics.hpp"
#include "util/spare_buffers.hpp"

namespace obsgw {

namespace {

using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::chrono::milliseconds kTrustRecentlyUsed{250};

struct UpstreamConnection {
  UpstreamConnection(Transport t, const asio::any_io_executor& ex) : transport(std::move(t)), dog(ex) {}
  Transport transport;
  net::Watchdog dog;
  util::IoBuffer buf;  // taken for a request, given back to the thread's spares while pooled
  std::size_t begin = 0, end = 0;
  clock::time_point idle_since;
  std::string head;       // the serialized request head; its capacity is reused across requests
  ResponseHead response;  // likewise for the parsed response head
  // The last response had no body (HEAD, 204, 304): a misbehaving upstream may still send one, so the
  // connection is checked for stray bytes before its next use however recently it was used.
  bool check_before_reuse = false;
};

// Connections of one upstream owned by one io thread: no locks. One pool per endpoint.
struct EndpointPool {
  std::deque<std::unique_ptr<UpstreamConnection>> idle;
  std::vector<tcp::endpoint> addresses;
  clock::time_point resolved_at;
};
struct ThreadPool {
  std::vector<EndpointPool> endpoints;
  proxy::EndpointSet::ThreadView view;
  std::optional<proxy::RetryBudget> budget;
};

// The pools live in thread-local storage, not in the forwarder: a thread's pooled sockets are then destroyed
// when that io thread exits, while its io_context is still alive, and a forwarder retired by a reload
// never touches another thread's sockets. Entries of retired forwarders are swept on the next insert.
struct PoolEntry {
  std::weak_ptr<const void> owner;
  std::unique_ptr<ThreadPool> pool;
};

ThreadPool& thread_pool_for(const std::shared_ptr<const void>& token) {
  thread_local std::vector<PoolEntry> entries;
  for (auto& e : entries) {
    if (!e.owner.owner_before(token) && !token.owner_before(e.owner) && !e.owner.expired()) return *e.pool;
  }
  std::erase_if(entries, [](const PoolEntry& e) { return e.owner.expired(); });
  entries.push_back(PoolEntry{token, std::make_unique<ThreadPool>()});
  return *entries.back().pool;
}

// True when a pooled connection is still fit for a new request: not closed by the upstream, and silent. Bytes
// waiting on an idle HTTP/1.1 connection would be taken for the next request's response, so any bytes disqualify
// it (for TLS they may be a harmless session ticket, but they cannot be told apart here without reading).
bool still_usable(UpstreamConnection& c) {
  if (!c.transport.is_open()) return false;
  char byte;
  ssize_t n = ::recv(c.transport.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" || method == "PUT" ||
         method == "DELETE";
}

void set_nodelay(tcp::socket& s) {
  std::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
}

// How one try ended, for the retry loop in forward().
enum class TryOutcome : unsigned char {
  done,             // answered (relayed, or an error response sent, or the client went away): stop
  not_sent,         // nothing reached the upstream (resolve/connect/TLS failed): safe to repeat anywhere
  failed_status,    // the upstream answered a retryable status, not relayed: repeat if the request is replayable
  failed_after_send,  // the request went out but no answer came (reset, timeout): repeat if replayable
};

struct TryResult {
  TryOutcome outcome = TryOutcome::done;
  std::error_code error;  // not_sent / failed_after_send
  int status = 0;         // failed_status
};

class HttpForwarder final : public Forwarder {
 public:
  HttpForwarder(UpstreamOptions options, unsigned io_threads) : options_(std::move(options)) {
    std::string error;
    auto url = proxy::parse_upstream_url(options_.url, error);
    if (!url) throw std::invalid_argument(fmt::format("upstream \"{}\": url {}", options_.name, error));
    if (options_.resolve_interval < UpstreamOptions::kMinResolveInterval)
      throw std::invalid_argument(fmt::format("upstream \"{}\": resolve_interval must be at least {} ms", options_.name,
                                              UpstreamOptions::kMinResolveInterval.count()));
    url_ = *url;
    if (url_.tls) {
      tls_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
      if (!options_.tls_ca_file.empty()) {
        std::error_code ec;
        tls_->load_verify_file(options_.tls_ca_file, ec);
        if (ec)
          throw std::invalid_argument(fmt::format("upstream \"{}\": cannot load tls.ca_file \"{}\": {}", options_.name,
                                                  options_.tls_ca_file, ec.message()));
      } else {
        tls_->set_default_verify_paths();
      }
    }
    server_name_ = options_.tls_server_name.empty() ? url_.host : options_.tls_server_name;
    endpoints_ = std::make_shared<proxy::EndpointSet>(options_.name, url_.host, url_.port, options_.endpoints,
                                                      options_.balance, options_.outlier);
    retry_on_ = options_.retry.on_status;
    if (!options_.health_check.path.empty()) {
      auto target = std::make_shared<proxy::HealthTarget>();
      target->upstream = options_.name;
      target->endpoints = endpoints_;
      target->options = options_.health_check;
      target->authority = url_.authority;
      target->base_path = url_.base_path;
      target->tls = tls_;
      target->server_name = server_name_;
      target->tls_verify = options_.tls_verify;
      health_ = target;
      proxy::start_health_checks(health_);
    }
    (void)io_threads;
  }

  std::string_view name() const noexcept override { return options_.name; }
  std::string_view path_prefix() const noexcept override { return url_.base_path; }
  bool ready() const noexcept override { return healthy_.load(std::memory_order_relaxed); }

  asio::awaitable<void> forward(Exchange& ex, Downstream& down) const override;

  asio::awaitable<bool> probe() const override {
    // Ready when any endpoint can be reached now.
    for (std::size_t i = 0; i < endpoints_->size(); ++i) {
      std::error_code ec;
      auto c = co_await connect(i, clock::now() + options_.connect_timeout, ec);
      if (c) {
        c->transport.close();
        healthy_.store(true, std::memory_order_relaxed);
        co_return true;
      }
    }
    healthy_.store(false, std::memory_order_relaxed);
    co_return false;
  }

 private:
  ThreadPool& pool() const {
    ThreadPool& p = thread_pool_for(alive_);
    if (p.endpoints.size() != endpoints_->size()) p.endpoints = std::vector<EndpointPool>(endpoints_->size());
    if (!p.budget) p.budget.emplace(options_.retry.budget_ratio, options_.retry.budget_min_per_second);
    return p;
  }
  std::unique_ptr<UpstreamConnection> take_idle(std::size_t endpoint) const;
  void give_back(std::size_t endpoint, std::unique_ptr<UpstreamConnection> c) const;
  asio::awaitable<std::unique_ptr<UpstreamConnection>> connect(std::size_t endpoint, clock::time_point deadline,
                                                                std::error_code& ec) const;
  // One try on one endpoint. `intercept` lets a retryable status come back unrelayed (a later try, or the final
  // 503, answers instead).
  asio::awaitable<TryResult> try_endpoint(Exchange& ex, Downstream& down, std::size_t endpoint, const std::string* buffered,
                                          bool replayable, bool intercept, clock::time_point deadline) const;
  bool retryable_status(int status) const noexcept {
    return std::find(retry_on_.begin(), retry_on_.end(), status) != retry_on_.end();
  }
  std::chrono::milliseconds backoff(unsigned retry) const;
  // Serializes the upstream request head. Returns false when a policy left something that must not go on the
  // wire (CR/LF or control bytes in a header, an invalid method, path or query): the request is refused.
  bool build_head(const Exchange& ex, bool chunked, std::uint64_t length, std::string& h) const;
  asio::awaitable<void> read_response_head(UpstreamConnection& c, const Exchange& ex, clock::time_point deadline,
                                           ResponseHead& head, std::error_code& ec) const;
  // A read into the connection's buffer, in two halves so that no coroutine frame is made for it:
  //   if (!end_read(c, co_await start_read(c, deadline, ec), ec)) ...
  asio::awaitable<std::size_t> start_read(UpstreamConnection& c, clock::time_point deadline, std::error_code& ec) const;
  bool end_read(UpstreamConnection& c, std::size_t n, std::error_code& ec) const;
  asio::awaitable<void> fail(Exchange& ex, Downstream& down, std::error_code ec, const std::string& detail) const;
  void note_error(std::string_view kind) const {
    detail::Metrics::instance().upstream_errors.add(options_.name + '\x1f' + std::string(kind));
  }

  UpstreamOptions options_;
  proxy::UpstreamUrl url_;
  std::string server_name_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::shared_ptr<proxy::EndpointSet> endpoints_;
  std::shared_ptr<const proxy::HealthTarget> health_;  // the health checker holds it weakly
  std::vector<int> retry_on_;
  std::shared_ptr<const void> alive_ = std::make_shared<int>(0);  // identifies this forwarder's pools
  mutable std::atomic<bool> healthy_{true};
  mutable std::atomic<std::int64_t> pending_{0};  // requests in flight, all threads (circuit breaker)
};

std::unique_ptr<UpstreamConnection> HttpForwarder::take_idle(std::size_t endpoint) const {
  auto& p = pool().endpoints[endpoint];
  auto now = net::coarse_now();
  while (!p.idle.empty()) {
    auto c = std::move(p.idle.back());
    p.idle.pop_back();
    if (now - c->idle_since >= options_.idle_timeout) continue;
    // The check costs a system call per request, so a connection whose last response ended cleanly (with a body
    // whose length we read exactly, and nothing after it in our buffer) moments ago is taken as it is: upstreams
    // close idle connections after seconds, and announce it (Connection: close) when they close sooner. The rare
    // loser of that race is retried when idempotent.
    if (!c->check_before_reuse && now - c->idle_since < kTrustRecentlyUsed) return c;
    if (still_usable(*c)) return c;
  }
  return nullptr;
}

void HttpForwarder::give_back(std::size_t endpoint, std::unique_ptr<UpstreamConnection> c) const {
  auto& p = pool().endpoints[endpoint];
  c->idle_since = net::coarse_now();
  c->begin = c->end = 0;
  util::SpareBuffers::give_back(std::move(c->buf));
  c->buf = {};
  c->dog.disarm();
  if (options_.max_idle_connections == 0) return;  // pooling disabled: the connection closes here
  while (p.idle.size() >= options_.max_idle_connections) p.idle.pop_front();  // the oldest goes
  p.idle.push_back(std::move(c));
}

asio::awaitable<std::unique_ptr<UpstreamConnection>> HttpForwarder::connect(std::size_t endpoint, clock::time_point deadline,
                                                                            std::error_code& ec) const {
  auto ex = co_await asio::this_coro::executor;
  auto& p = pool().endpoints[endpoint];
  const proxy::EndpointState& target = endpoints_->at(endpoint);
  if (p.addresses.empty() || clock::now() - p.resolved_at >= options_.resolve_interval) {
    std::error_code addr_ec;
    auto addr = asio::ip::make_address(target.host, addr_ec);
    if (!addr_ec) {
      p.addresses = {tcp::endpoint(addr, target.port)};
      p.resolved_at = clock::now();
    } else {
      // getaddrinfo runs on Asio's resolver thread, not on this io thread.
      tcp::resolver resolver(ex);
      std::error_code rec;
      auto results = co_await resolver.async_resolve(target.host, std::to_string(target.port),
                                                     asio::redirect_error(asio::use_awaitable, rec));
      if (!rec && !results.empty()) {
        p.addresses.clear();
        for (const auto& r : results) p.addresses.push_back(r.endpoint());
        p.resolved_at = clock::now();
      } else if (p.addresses.empty()) {
        ec = GatewayError::upstream_resolve;
        co_return nullptr;
      } else {
        // A resolver outage must not take a known upstream away: the last addresses serve, and the name is tried
        // again in a second (not on every connection).
        const clock::duration retry_in = std::min<clock::duration>(options_.resolve_interval, std::chrono::seconds(1));
        p.resolved_at = clock::now() - options_.resolve_interval + retry_in;
      }
    }
  }
  tcp::socket socket(ex);
  Transport plain(std::move(socket));
  net::Watchdog dog(ex);
  auto left = std::chrono::duration_cast<milliseconds>(std::min(deadline, clock::now() + options_.connect_timeout) - clock::now());
  dog.arm(std::max(left, milliseconds(1)), &plain);
  co_await asio::async_connect(plain.socket(), p.addresses, asio::redirect_error(asio::use_awaitable, ec));
  bool timed_out = dog.expired();
  dog.disarm();
  if (ec) {
    ec = timed_out ? GatewayError::upstream_connect_timeout : GatewayError::upstream_connect;
    co_return nullptr;
  }
  set_nodelay(plain.socket());
  auto conn = std::make_unique<UpstreamConnection>(
      tls_ ? Transport(std::move(plain.socket()), *tls_) : Transport(std::move(plain.socket())), ex);
  if (tls_) {
    conn->dog.arm(options_.connect_timeout, &conn->transport);
    co_await conn->transport.handshake_as_client(server_name_, options_.tls_verify, ec);
    timed_out = conn->dog.expired();
    conn->dog.disarm();
    if (ec) {
      ec = timed_out ? GatewayError::upstream_connect_timeout : GatewayError::upstream_tls;
      co_return nullptr;
    }
  }
  co_return conn;
}

std::chrono::milliseconds HttpForwarder::backoff(unsigned retry) const {
  thread_local std::minstd_rand random(std::random_device{}());
  double wait = static_cast<double>(options_.retry.base.count());
  for (unsigned i = 1; i < retry && wait < static_cast<double>(options_.retry.cap.count()); ++i) wait *= 2;
  wait = std::min(wait, static_cast<double>(options_.retry.cap.count()));
  const double shorten = options_.retry.jitter * std::uniform_real_distribution<double>(0, 1)(random);
  return milliseconds(static_cast<std::int64_t>(wait * (1 - shorten)));
}

bool HttpForwarder::build_head(const Exchange& ex, bool chunked, std::uint64_t length, std::string& h) const {
  const RequestHead& req = ex.request();
  h.clear();
  if (!http::is_token(req.method) || req.path.empty() || req.path.front() != '/') return false;
  for (char ch : req.path)
    if (!http::is_target_char(ch) || ch == '?') return false;
  for (char ch : req.query)
    if (!http::is_target_char(ch)) return false;
  if (!req.headers.untrusted_all_of([](const HeaderView& f) { return http::is_token(f.name) && http::is_field_value(f.value); }))
    return false;
  h.append(req.method).push_back(' ');
  h.append(url_.base_path).append(req.path);
  if (!req.query.empty()) h.append(1, '?').append(req.query);
  h.append(" HTTP/1.1\r\nHost: ");
  h.append(options_.preserve_host && !req.authority.empty() ? req.authority : url_.authority);
  h.append("\r\n");
  // The client's own X-Forwarded-* headers are replaced, never passed on: a chain from trusted proxies was already
  // checked and normalised into Exchange::forwarded_for(); anything else a client claims there is spoofable.
  // Framing and Host are the gateway's to write.
  const auto replaced = [](std::string_view name) {
    switch (name.size()) {
      case 4: return iequals(name, "host");
      case 9: return iequals(name, "forwarded");
      case 10: return iequals(name, "connection");
      case 14: return iequals(name, "content-length");
      case 15: return iequals(name, "x-forwarded-for");
      case 16: return iequals(name, "x-forwarded-host");
      case 17: return iequals(name, "transfer-encoding") || iequals(name, "x-forwarded-proto");
      default: return false;
    }
  };
  http::append_fields(h, req.headers, replaced);
  h.append("X-Forwarded-For: ");
  h.append(ex.forwarded_for()).append("\r\nX-Forwarded-Proto: ").append(ex.connection().tls ? "https" : "http");
  if (!req.authority.empty()) h.append("\r\nX-Forwarded-Host: ").append(req.authority);
  h.append("\r\n");
  if (req.websocket_upgrade) h.append("Connection: Upgrade\r\n");
  if (chunked) h.append("Transfer-Encoding: chunked\r\n");
  else if (length > 0 || req.method == "POST" || req.method == "PUT" || req.method == "PATCH")
    fmt::format_to(std::back_inserter(h), "Content-Length: {}\r\n", length);
  h.append("\r\n");
  return true;
}

asio::awaitable<std::size_t> HttpForwarder::start_read(UpstreamConnection& c, clock::time_point deadline,
                                                      std::error_code& ec) const {
  if (c.begin == c.end) c.begin = c.end = 0;
  if (c.buf.empty()) c.buf = util::SpareBuffers::take(util::SpareBuffers::kResponseSize);
  if (c.end == c.buf.size()) {
    if (c.begin > 0) {
      std::memmove(c.buf.data(), c.buf.data() + c.begin, c.end - c.begin);
      c.end -= c.begin;
      c.begin = 0;
    } else {
      c.buf.resize(c.buf.size() * 2);
    }
  }
  auto now = net::coarse_now();
  auto left = std::chrono::duration_cast<milliseconds>(std::min(deadline, now + options_.read_timeout) - now);
  // A deadline already past still starts the read, and the watchdog ends it at once as a timeout.
  c.dog.arm(std::max(left, milliseconds(1)), &c.transport);
  return c.transport.read_some(asio::buffer(c.buf.data() + c.end, c.buf.size() - c.end), ec);
}

bool HttpForwarder::end_read(UpstreamConnection& c, std::size_t n, std::error_code& ec) const {
  bool timed_out = c.dog.expired();
  c.dog.disarm();
  c.end += n;
  if (!ec) return true;
  if (timed_out) ec = GatewayError::upstream_timeout;
  return false;
}

asio::awaitable<void> HttpForwarder::read_response_head(UpstreamConnection& c, const Exchange& ex,
                                                        clock::time_point deadline, ResponseHead& head,
                                                        std::error_code& ec) const {
  http::ResponseParser parser;
  while (true) {
    auto state = parser.parse({c.buf.data() + c.begin, c.end - c.begin}, ex.request().method, head);
    if (state == http::ResponseParser::State::failed) {
      ec = GatewayError::upstream_bad_response;
      co_return;
    }
    if (state == http::ResponseParser::State::complete) {
      c.begin += parser.head_size();
      // Interim responses (100 Continue, 103 Early Hints) are not relayed; 101 is final for upgrades.
      if (head.status >= 100 && head.status < 200 && !(head.status == 101 && ex.request().websocket_upgrade)) {
        parser.reset();
        continue;
      }
      co_return;
    }
    if (c.end - c.begin > 64 * 1024 + 4096) {
      ec = GatewayError::upstream_bad_response;
      co_return;
    }
    if (!end_read(c, co_await start_read(c, deadline, ec), ec)) {
      if (ec == asio::error::eof || ec == asio::error::connection_reset) ec = GatewayError::upstream_reset;
      else if (ec != GatewayError::upstream_timeout) ec = GatewayError::upstream_reset;
      co_return;
    }
  }
}

asio::awaitable<void> HttpForwarder::fail(Exchange& ex, Downstream& down, std::error_code ec,
                                          const std::string& detail_text) const {
  auto r = error_response_for(ec);
  if (ec.category() == gateway_category() && r.status >= 500) note_error(r.code);
  if (r.status >= 500) healthy_.store(ec != GatewayError::upstream_connect && ec != GatewayError::upstream_connect_timeout &&
                                      ec != GatewayError::upstream_resolve && ec != GatewayError::upstream_tls,
                                      std::memory_order_relaxed);
  ex.outcome.rejected_by = r.code;
  if (down.head_sent()) co_return;  // too late for an error response; the caller closes the client connection
  std::string message = r.message;
  if (options_.expose_errors)
    message += fmt::format(" ({} {}:{}{})", options_.name, url_.host, url_.port, detail_text.empty() ? "" : ": " + detail_text);
  std::error_code wec;
  co_await down.respond_error(r.status, r.code, message, wec);
}

asio::awaitable<TryResult> HttpForwarder::try_endpoint(Exchange& ex, Downstream& down, std::size_t endpoint,
                                                        const std::string* buffered, bool replayable, bool intercept,
                                                        clock::time_point deadline) const {
  const RequestHead& req = ex.request();
  const bool has_body = buffered ? !buffered->empty() : req.framing != BodyFraming::none;
  const bool chunked = !buffered && req.framing == BodyFraming::chunked;
  const std::uint64_t length = buffered ? buffered->size() : req.content_length;

  std::error_code ec;
  for (unsigned attempt = 0;; ++attempt) {
    ++ex.outcome.upstream_tries;  // every attempt counts, refused connections included
    auto conn = take_idle(endpoint);
    const bool reused = conn != nullptr;
    if (!conn) {
      conn = co_await connect(endpoint, deadline, ec);
      if (!conn) {
        healthy_.store(false, std::memory_order_relaxed);
        co_return TryResult{TryOutcome::not_sent, ec, 0};
      }
      healthy_.store(true, std::memory_order_relaxed);
    }
    UpstreamConnection& c = *conn;
    if (!build_head(ex, chunked, has_body ? length : 0, c.head)) {
      ex.outcome.rejected_by = "invalid_upstream_request";
      detail::Metrics::instance().rejections.add("invalid_upstream_request");
      std::error_code wec;
      co_await down.respond_error(500, "invalid_upstream_request",
                                  "a policy produced a request that cannot be sent (invalid header, method or path)", wec);
      co_return TryResult{};
    }
    const std::string& head_text = c.head;

    // ---- send the request ----
    bool body_sent = !has_body;
    std::error_code client_ec;
    auto arm_write = [&] {
      auto now = net::coarse_now();
      auto left = std::chrono::duration_cast<milliseconds>(std::min(deadline, now + options_.read_timeout) - now);
      c.dog.arm(std::max(left, milliseconds(1)), &c.transport);
    };
    arm_write();
    if (buffered || !has_body) {
      std::string_view body = buffered ? std::string_view(*buffered) : std::string_view{};
      const std::array<asio::const_buffer, 2> bufs{asio::buffer(head_text), asio::buffer(body.data(), body.size())};
      if (std::size_t sent; !c.transport.write_all_now(bufs, sent, ec))
        co_await c.transport.write_rest(bufs, sent, ec);
      body_sent = !ec;
    } else {
      // Stream: the first piece goes out with the head.
      std::string_view piece = co_await down.read_body(client_ec);
      if (!client_ec) {
        arm_write();
        char size_line[24];
        std::size_t size_len = 0;
        if (chunked && !piece.empty()) size_len = static_cast<std::size_t>(fmt::format_to(size_line, "{:x}\r\n", piece.size()) - size_line);
        const bool framed = size_len > 0;
        const std::array<asio::const_buffer, 4> bufs{asio::buffer(head_text), asio::buffer(size_line, size_len),
                                                     asio::buffer(piece.data(), piece.size()),
                                                     asio::buffer("\r\n", framed ? 2 : 0)};
        if (std::size_t sent; !c.transport.write_all_now(bufs, sent, ec))
          co_await c.transport.write_rest(bufs, sent, ec);
      }
      while (!ec && !client_ec && !down.body_complete()) {
        piece = co_await down.read_body(client_ec);
        if (client_ec || piece.empty()) break;
        arm_write();
        if (chunked) {
          char size_line[24];
          auto e = fmt::format_to(size_line, "{:x}\r\n", piece.size());
          const std::array<asio::const_buffer, 3> bufs{asio::buffer(size_line, static_cast<std::size_t>(e - size_line)),
                                                       asio::buffer(piece.data(), piece.size()), asio::buffer("\r\n", 2)};
          if (std::size_t sent; !c.transport.write_all_now(bufs, sent, ec))
            co_await c.transport.write_rest(bufs, sent, ec);
        } else {
          const std::array<asio::const_buffer, 1> bufs{asio::buffer(piece.data(), piece.size())};
          if (std::size_t sent; !c.transport.write_all_now(bufs, sent, ec))
            co_await c.transport.write_rest(bufs, sent, ec);
        }
      }
      if (!ec && !client_ec && chunked) {
        arm_write();
        const std::array<asio::const_buffer, 1> bufs{asio::buffer("0\r\n\r\n", 5)};
        if (std::size_t sent; !c.transport.write_all_now(bufs, sent, ec))
          co_await c.transport.write_rest(bufs, sent, ec);
      }
      body_sent = !ec && !client_ec;
    }
    bool write_timed_out = c.dog.expired();
    c.dog.disarm();
    // A body streamed from the client: without a per-try timeout, the wait for the answer starts now, so that a
    // long upload (each read of which has its own timeout) does not eat into the upstream's time to answer. Such a
    // request is never tried twice. Anything else keeps the deadline it came with: for a retried request that is
    // the overall one, which bounds every try together.
    if (options_.retry.per_try_timeout.count() == 0 && !buffered && has_body)
      deadline = net::coarse_now() + options_.total_timeout;
    if (client_ec) {
      // The client's body was bad, too large or too slow: the upstream got a partial request and is dropped.
      auto r = error_response_for(client_ec);
      ex.outcome.rejected_by = r.code;
      detail::Metrics::instance().rejections.add(r.code);
      if (!down.head_sent() && client_ec != GatewayError::client_closed) {
        std::error_code wec;
        co_await down.respond_error(r.status, r.code, r.message, wec);
      } else {
        ex.outcome.status = 499;
      }
      co_return TryResult{};
    }
    if (ec && write_timed_out) {
      note_error("write_timeout");
      co_return TryResult{TryOutcome::failed_after_send, GatewayError::upstream_timeout, 0};
    }
    if (ec && reused && replayable && attempt == 0) {
      // The pooled connection died under us: one fresh try is safe for a replayable request.
      detail::Metrics::instance().upstream_retries.add(options_.name);
      continue;
    }
    // If the write failed, the upstream may still have answered (an early 413, say): read it.

    // ---- read the response head ----
    ResponseHead& head = c.response;
    std::error_code rec;
    co_await read_response_head(c, ex, deadline, head, rec);
    if (rec) {
      if (reused && replayable && attempt == 0 && rec == GatewayError::upstream_reset && c.end == 0) {
        detail::Metrics::instance().upstream_retries.add(options_.name);
        continue;
      }
      co_return TryResult{TryOutcome::failed_after_send, rec, 0};
    }

    // ---- WebSocket ----
    if (head.status == 101) {
      std::error_code wec;
      co_await down.write_head(head, wec);
      if (wec) co_return TryResult{};
      std::string_view pending(c.buf.data() + c.begin, c.end - c.begin);
      co_await down.tunnel(c.transport, pending, options_.tunnel_idle_timeout, wec);
      co_return TryResult{};
    }
    if (intercept && retryable_status(head.status)) {
      // Not relayed: another try (or the final 503) answers. The connection, with its unread body, is dropped.
      co_return TryResult{TryOutcome::failed_status, {}, head.status};
    }

    // ---- relay the response ----
    const bool upstream_keep_alive = head.keep_alive;
    c.check_before_reuse = head.framing == BodyFraming::none;
    proxy::remove_hop_by_hop(head.headers, false);
    std::error_code dec;
    co_await down.write_head(head, dec);
    bool complete = false;
    std::error_code uec;
    if (!dec) {
      if (head.framing == BodyFraming::none) {
        complete = true;
      } else if (head.framing == BodyFraming::content_length) {
        std::uint64_t left = head.content_length;
        while (left > 0 && !dec) {
          if (c.begin == c.end && !end_read(c, co_await start_read(c, clock::time_point::max(), uec), uec)) break;
          std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, c.end - c.begin));
          std::string_view piece(c.buf.data() + c.begin, n);
          c.begin += n;
          left -= n;
          co_await down.write_body(piece, dec);
        }
        complete = left == 0 && !uec;
      } else if (head.framing == BodyFraming::chunked) {
        http::ChunkedDecoder decoder(502);
        while (!dec) {
          if (c.begin < c.end) {
            auto step = decoder.decode({c.buf.data() + c.begin, c.end - c.begin});
            if (step.error) {
              uec = GatewayError::upstream_bad_response;
              break;
            }
            c.begin += step.consumed;
            if (!step.data.empty()) co_await down.write_body(step.data, dec);
            if (step.done) {
              complete = true;
              break;
            }
            if (step.consumed > 0) continue;
          }
          if (!end_read(c, co_await start_read(c, clock::time_point::max(), uec), uec)) break;
        }
      } else {  // until_close
        while (!dec) {
          if (c.begin < c.end) {
            std::string_view piece(c.buf.data() + c.begin, c.end - c.begin);
            c.begin = c.end;
            co_await down.write_body(piece, dec);
            continue;
          }
          if (!end_read(c, co_await start_read(c, clock::time_point::max(), uec), uec)) {
            if (uec == asio::error::eof) {
              uec = {};
              complete = true;
            }
            break;
          }
        }
      }
    }
    if (dec) co_return TryResult{};  // the client went away; the upstream connection is dropped with it
    if (!complete) {
      // The upstream failed mid-body: the client cannot get an error status any more, so its connection
      // is closed without finishing the body, which tells it the response is incomplete.
      note_error(uec == GatewayError::upstream_timeout ? "read_timeout" : "truncated_body");
      ex.outcome.rejected_by = "upstream_truncated";
      co_await fail(ex, down, uec ? uec : std::error_code(GatewayError::upstream_reset), "");
      co_return TryResult{};
    }
    co_await down.finish(dec);
    if (upstream_keep_alive && body_sent && head.framing != BodyFraming::until_close && c.begin == c.end)
      give_back(endpoint, std::move(conn));
    co_return TryResult{};
  }
}

asio::awaitable<void> HttpForwarder::forward(Exchange& ex, Downstream& down) const {
  ex.outcome.upstream = options_.name;
  const RequestHead& req = ex.request();
  std::error_code ec;

  // Circuit breaker: past max_pending requests in flight, answer at once instead of queueing on a slow upstream.
  struct PendingSlot {
    std::atomic<std::int64_t>* counter = nullptr;
    ~PendingSlot() {
      if (counter) counter->fetch_sub(1, std::memory_order_relaxed);
    }
  } slot;
  if (options_.max_pending > 0) {
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= static_cast<std::int64_t>(options_.max_pending)) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      note_error("overloaded");
      ex.outcome.rejected_by = "upstream_overloaded";
      co_await down.respond_error(503, "upstream_overloaded", "too many requests are in flight to this upstream; retry shortly", ec);
      co_return;
    }
    slot.counter = &pending_;
  }

  ThreadPool& tp = pool();
  const RetryOptions& retry = options_.retry;
  const bool retries = retry.max_retries > 0;
  if (retries) tp.budget->on_request();
  const Route* route = ex.route();
  const bool unsafe_ok = route && route->retry.unsafe_methods;
  const std::string* buffered = ex.buffered_body();
  std::string held_body;
  if (retries && unsafe_ok && !buffered && req.framing == BodyFraming::content_length &&
      req.content_length <= route->retry.max_body_bytes) {
    // Held whole so that it can be sent again (grown as it arrives: a Content-Length alone reserves nothing).
    held_body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(req.content_length, 64 * 1024)));
    while (!down.body_complete()) {
      std::string_view piece = co_await down.read_body(ec);
      if (ec) {
        auto r = error_response_for(ec);
        ex.outcome.rejected_by = r.code;
        detail::Metrics::instance().rejections.add(r.code);
        std::error_code wec;
        if (ec != GatewayError::client_closed) co_await down.respond_error(r.status, r.code, r.message, wec);
        else ex.outcome.status = 499;
        co_return;
      }
      if (piece.empty()) break;
      held_body.append(piece);
    }
    buffered = &held_body;
  }
  // A request is sent again only when nothing of it was taken from the client that we could not send again, and
  // its method is idempotent (the upstream may have acted on the first try: RFC 9110 9.2.2) or the route says
  // its requests are safe to repeat.
  const bool replayable = (buffered != nullptr || req.framing == BodyFraming::none) && (is_idempotent(req.method) || unsafe_ok);
  const bool intercept = retries && replayable;
  // Bounds every try together, from now (after any body was held): connecting, sending and the wait for the
  // response head. Only a body streamed from the client (never tried twice) restarts the wait once it is sent, so
  // that a long upload (each read of which has its own timeout) does not eat into the upstream's time to answer.
  const auto deadline = net::coarse_now() + options_.total_timeout;

  std::uint64_t tried = 0;
  unsigned retried = 0;
  TryResult last;
  std::string history;  // "connect refused, 503, ..." for the final message
  while (true) {
    const std::size_t e = endpoints_->pick(tp.view, tried);
    if (e < 64) tried |= std::uint64_t{1} << e;
    auto try_deadline = deadline;
    if (retry.per_try_timeout.count() > 0) try_deadline = std::min(deadline, net::coarse_now() + retry.per_try_timeout);
    if (tp.view.outstanding.size() > e) ++tp.view.outstanding[e];
    last = co_await try_endpoint(ex, down, e, buffered, replayable, intercept, try_deadline);
    if (tp.view.outstanding.size() > e) --tp.view.outstanding[e];
    if (last.outcome == TryOutcome::done) {
      const int status = ex.outcome.status;
      if (status == 502 || status == 503 || status == 504) endpoints_->record_failure(e);
      else endpoints_->record_success(e);
      co_return;
    }
    endpoints_->record_failure(e);
    std::string what = last.outcome == TryOutcome::failed_status ? fmt::format("status {}", last.status)
                                                                  : error_response_for(last.error).code;
    const std::string kind = last.outcome == TryOutcome::failed_status ? fmt::format("status_{}", last.status) : what;
    history += (history.empty() ? "" : ", ") + what;
    const bool repeatable = last.outcome == TryOutcome::not_sent || replayable;
    if (!retries || retried >= retry.max_retries || !repeatable) break;
    if (!tp.budget->can_retry()) {
      note_error("retry_budget_exhausted");
      break;
    }
    const auto wait = backoff(retried + 1);
    if (net::coarse_now() + wait >= deadline) break;
    tp.budget->spend();
    ++retried;
    note_error(kind);  // the last try's error is counted where the answer is made
    detail::Metrics::instance().upstream_retries.add(options_.name);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(wait);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (retries && (retried > 0 || last.outcome == TryOutcome::failed_status)) {
    note_error(last.outcome == TryOutcome::failed_status ? fmt::format("status_{}", last.status)
                                                         : std::string(error_response_for(last.error).code));
    ex.outcome.rejected_by = "upstream_unavailable";
    if (down.head_sent()) co_return;
    std::string message = fmt::format("the upstream failed on every try ({} {}: {})", retried + 1, retried ? "tries" : "try", history);
    std::error_code wec;
    co_await down.respond_error(503, "upstream_unavailable", message, wec);
    co_return;
  }
  co_await fail(ex, down, last.error, last.error.message());
}

}  // namespace

std::shared_ptr<const Forwarder> make_http_forwarder(UpstreamOptions options, unsigned io_threads) {
  return std::make_shared<HttpForwarder>(std::move(options), io_threads);
}

}  // namespace obsgw
