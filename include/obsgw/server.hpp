#pragma once
/// @file
/// The HTTP/1.1 server: N io threads, each with its own io_context and SO_REUSEPORT listeners,
/// serving a Gateway snapshot, plus an admin listener.

#include <chrono>
#include <memory>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "obsgw/gateway.hpp"
#include "obsgw/logger.hpp"
#include "obsgw/server_options.hpp"

namespace obsgw {

class Server {
 public:
  /// Throws std::runtime_error when a TLS certificate or key cannot be loaded.
  Server(ServerOptions options, std::shared_ptr<const Gateway> gateway, std::shared_ptr<Logger> logger);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener (throws std::system_error naming the address on failure) and starts the io threads.
  void start();
  /// Bound addresses of the proxy listeners, in ServerOptions order, and of the admin listener.
  std::vector<asio::ip::tcp::endpoint> endpoints() const;
  std::optional<asio::ip::tcp::endpoint> admin_endpoint() const;

  /// Serves `gateway` for every request that starts from now on. Thread-safe.
  void reload(std::shared_ptr<const Gateway> gateway);
  /// Stops accepting, lets in-flight requests finish (closing idle keep-alive connections), then, after
  /// `deadline`, closes what is left. Returns when every connection is gone. Thread-safe.
  void drain(std::chrono::milliseconds deadline);
  /// Blocks until the io threads have exited (after drain()).
  void wait();

  /// Process-wide statistics, the same the admin listener serves.
  std::string stats_json() const;
  std::string metrics_text() const;

  /// Counts a configuration reload for /metrics and /stats.
  void note_reload(bool ok) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace obsgw
