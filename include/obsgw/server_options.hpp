#pragma once
/// @file
/// Listener, limit and timeout settings of the HTTP server.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace obsgw {

struct ListenerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  ///< 0: any free port (see Server::endpoints())
  bool tls = false;
  std::string cert_file;   ///< PEM chain, for TLS listeners
  std::string key_file;    ///< PEM private key
};

/// Parses "host:port", "[v6]:port" or ":port" (all interfaces). Returns nullopt when malformed.
std::optional<ListenerOptions> parse_listen_address(const std::string& text);

struct HttpLimits {
  std::size_t max_request_line = 8 * 1024;      ///< 414 beyond
  std::size_t max_header_bytes = 32 * 1024;     ///< whole head; 431 beyond
  std::size_t max_header_count = 100;           ///< 431 beyond
  std::uint64_t max_body_bytes = 100ull << 20;  ///< 413 beyond
};

struct HttpTimeouts {
  std::chrono::milliseconds header{10000};    ///< from the first byte of a request to the end of its head (408)
  std::chrono::milliseconds body_read{30000}; ///< longest wait for the next body bytes (408)
  std::chrono::milliseconds idle{60000};      ///< keep-alive connection with no request (closed)
  std::chrono::milliseconds write{30000};     ///< longest wait for the client to accept response bytes
  std::chrono::milliseconds tls_handshake{10000};
};

struct ServerOptions {
  std::vector<ListenerOptions> listeners;
  std::optional<ListenerOptions> admin;  ///< /health, /ready, /stats, /metrics
  unsigned threads = 0;                  ///< io threads; 0 = number of cores
  std::size_t max_connections = 10000;   ///< beyond it new connections get 503 and are closed
  HttpLimits limits;
  HttpTimeouts timeouts;
  std::chrono::milliseconds drain_timeout{30000};
};

}  // namespace obsgw
