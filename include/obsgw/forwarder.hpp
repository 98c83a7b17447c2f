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

/// Settings of one HTTP(S) upstream. Defaults are documented in docs/configuration.md.
struct UpstreamOptions {
  std::string name;
  std::string url;  ///< http://host:port[/base] or https://...; a base path is prepended to request paths

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

  bool preserve_host = false;   ///< send the client's Host instead of the upstream's
  bool expose_errors = false;   ///< name the upstream address in 502/504 messages
};

/// The HTTP/1.1 reverse proxy: per-thread keep-alive pools, streamed bodies in both directions,
/// hop-by-hop headers removed, X-Forwarded-* set, WebSocket upgrades tunnelled.
/// `io_threads` is the number of io threads that will call forward() (each gets its own pool).
/// Throws std::invalid_argument for an unusable URL or CA file.
std::shared_ptr<const Forwarder> make_http_forwarder(UpstreamOptions options, unsigned io_threads);

}  // namespace obsgw
