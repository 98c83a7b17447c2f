#pragma once
// A small HTTP/1.1 client for the gateway's own calls to identity providers (discovery, JWKS, introspection,
// userinfo): one request per connection, TLS verified against a CA file or the system store, a deadline over
// the whole exchange and a cap on the body. Runs on whatever executor awaits it; never blocks a thread.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/ssl/context.hpp>

#include "obsgw/headers.hpp"

namespace obsgw::net {

struct HttpClientRequest {
  std::string method = "GET";
  std::string url;  // http(s)://host[:port]/path[?query]
  std::vector<HeaderField> headers;
  std::string body;  // sent with Content-Length when not empty (or when the method is POST)
  std::chrono::milliseconds timeout{5000};
  std::size_t max_body = 1 << 20;
};

struct HttpClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

class HttpClient {
 public:
  // `ca_file` empty: the system's trust store. Throws std::runtime_error when the CA file cannot be read.
  explicit HttpClient(const std::string& ca_file = {});

  // Performs the request. On failure returns nullopt-like status 0 with `error` describing what went wrong
  // ("timed out after 5000 ms", "TLS: certificate verify failed", ...).
  asio::awaitable<HttpClientResponse> fetch(const HttpClientRequest& request, std::string& error) const;

 private:
  std::shared_ptr<asio::ssl::context> tls_;
};

// The max-age of a Cache-Control header value, if it has one (no-store/no-cache give 0).
std::optional<std::chrono::seconds> cache_max_age(std::string_view cache_control);

}  // namespace obsgw::net
