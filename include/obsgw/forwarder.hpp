#pragma once
/// @file
/// Sending a request on and relaying the answer: the Forwarder interface and the HTTP(S) reverse proxy.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>

#include "obsgw/downstream.hpp"
#include "obsgw/exchange.hpp"

namespace obsgw {

class Forwarder {
 public:
  virtual ~Forwarder() = default;
  /// Name used in logs, metrics and the access log's `upstream` field.
  virtual std::string_view name() const noexcept = 0;
  /// Sends ex.request() with the body read from `downstream`, and relays the answer to `downstream`.
  /// Answers the client in every case it still can (errors as JSON error responses).
  virtual asio::awaitable<void> forward(Exchange& ex, Downstream& downstream) const = 0;
  /// What the forwarder puts before the request's path (an upstream URL's base path), for signers that must
  /// sign the path as the upstream receives it.
  virtual std::string_view path_prefix() const noexcept { return {}; }
  /// Whether the last attempt to reach the upstream succeeded (true when unknown).
  virtual bool ready() const noexcept { return true; }
  /// For /ready: actively checks that the upstream can be reached now. Defaults to ready().
  virtual asio::awaitable<bool> probe() const { co_return ready(); }
};

/// Active health checks of an upstream's endpoints (off when `path` is empty).
struct HealthCheckOptions {
  std::string path;  ///< e.g. "/ready"; GET with the upstream's Host; 2xx is healthy
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{1000};
  unsigned healthy_threshold = 2;    ///< consecutive passes to take an endpoint back
  unsigned unhealthy_threshold = 3;  ///< consecutive failures to take it out
};

/// Passive ejection: an endpoint that fails this many requests in a row (connection failures, 502/503/504,
/// timeouts) gets no traffic for `ejection` (0 failures: off).
struct OutlierOptions {
  unsigned consecutive_failures = 5;
  std::chrono::milliseconds ejection{30000};
};

/// Retries of requests that are safe to repeat (idempotent methods, or bodies the gateway holds whole; see
/// Route::retry) on connection failures and the statuses in `on_status`, with exponential backoff and jitter.
struct RetryOptions {
  unsigned max_retries = 0;  ///< 0: no retries (a request is tried once)
  std::chrono::milliseconds base{1000};  ///< the first retry waits about this, then twice as long each time
  std::chrono::milliseconds cap{4000};   ///< no wait is longer
  double jitter = 0.2;                   ///< each wait is shortened by a random part up to this fraction
  std::vector<int> on_status{502, 503, 504};
  std::chrono::milliseconds per_try_timeout{0};  ///< 0: total_timeout bounds every try alike
  /// Retries allowed per io thread: `budget_ratio` of the requests plus `budget_min_per_second`, so that
  /// retries cannot multiply an outage's load.
  double budget_ratio = 0.2;
  double budget_min_per_second = 3;
};

/// Settings of one HTTP(S) upstream. Defaults are documented in docs/configuration.md.
struct UpstreamOptions {
  std::string name;
  std::string url;  ///< http://host:port[/base] or https://...; a base path is prepended to request paths
  /// Where to connect, "host:port" each (names re-resolved every 30 s); empty: the url's host and port. The
  /// url's host stays the Host header and the TLS name either way.
  std::vector<std::string> endpoints;
  enum class Balance : unsigned char { round_robin, least_outstanding } balance = Balance::round_robin;
  HealthCheckOptions health_check;
  OutlierOptions outlier;
  RetryOptions retry;
  std::size_t max_pending = 0;  ///< circuit breaker: requests in flight at once (all threads); beyond: 503; 0: no cap

  // TLS to the upstream (https URLs)
  bool tls_verify = true;       ///< verify the certificate chain and host name
  std::string tls_ca_file;      ///< CA bundle; empty: the system's default store
  std::string tls_server_name;  ///< SNI and name to verify; empty: the URL's host

  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds read_timeout{30000};    ///< longest wait for any byte from the upstream
  std::chrono::milliseconds total_timeout{120000};  ///< whole exchange, until the response head arrives
  std::chrono::milliseconds tunnel_idle_timeout{300000};  ///< WebSocket tunnels

  std::size_t max_idle_connections = 64;  ///< per io thread
  std::chrono::milliseconds idle_timeout{30000};  ///< pooled connections older than this are closed
  /// Host names are resolved again when a connection is made this long after the last resolution (per io
  /// thread; pooled connections keep their address). When a new resolution fails, the last addresses stay.
  /// At least kMinResolveInterval (a resolution per connection would stall on a slow resolver).
  std::chrono::milliseconds resolve_interval{30000};
  static constexpr std::chrono::milliseconds kMinResolveInterval{100};

  bool preserve_host = false;   ///< send the client's Host instead of the upstream's
  bool expose_errors = false;   ///< name the upstream address in 502/504 messages
};

/// The HTTP/1.1 reverse proxy: per-thread keep-alive pools, streamed bodies in both directions,
/// hop-by-hop headers removed, X-Forwarded-* set, WebSocket upgrades tunnelled.
/// `io_threads` is the number of io threads that will call forward() (each gets its own pool).
/// Throws std::invalid_argument for an unusable URL or CA file.
std::shared_ptr<const Forwarder> make_http_forwarder(UpstreamOptions options, unsigned io_threads);

}  // namespace obsgw
