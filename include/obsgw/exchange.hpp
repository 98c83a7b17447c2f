#pragma once
/// @file
/// The context one request carries through the pipeline. Each phase writes only its own fields.

#include <any>
#include <chrono>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "obsgw/http_message.hpp"
#include "obsgw/identity.hpp"

namespace obsgw {

struct Route;
class Policy;

/// Facts about the client connection.
struct ConnectionInfo {
  asio::ip::address peer_address;
  std::uint16_t peer_port = 0;
  std::uint16_t local_port = 0;
  bool tls = false;
  std::string peer_ip;  ///< peer_address as text (IPv4-mapped IPv6 shown as IPv4)
};

/// One request/response exchange.
class Exchange {
 public:
  using clock = std::chrono::steady_clock;

  Exchange(RequestHead request, ConnectionInfo connection);

  /// The request as it will be sent upstream: policies may edit headers, path and query.
  RequestHead& request() noexcept { return request_; }
  const RequestHead& request() const noexcept { return request_; }
  const ConnectionInfo& connection() const noexcept { return connection_; }
  /// The client: the peer, or when the peer is a trusted proxy the right-most untrusted X-Forwarded-For address
  /// (GatewayOptions::trusted_proxies). IPv4-mapped IPv6 is shown as IPv4.
  const asio::ip::address& client_address() const noexcept { return client_address_; }
  const std::string& client_ip() const noexcept { return client_ip_; }
  /// The X-Forwarded-For value sent upstream: the client and the trusted proxies after it (the peer last).
  const std::string& forwarded_for() const noexcept { return forwarded_for_.empty() ? client_ip_ : forwarded_for_; }
  void set_client(asio::ip::address address, std::string forwarded_for);

  /// The path as the client sent it (normalised), before a route's rewrite_prefix changed request().path.
  const std::string& client_path() const noexcept { return client_path_.empty() ? request_.path : client_path_; }
  void keep_client_path() { client_path_ = request_.path; }

  /// The matched route (set by the Router phase; null before it or when nothing matched).
  const Route* route() const noexcept { return route_; }
  void set_route(const Route* r) noexcept { route_ = r; }

  /// The gateway's configured region (GatewayOptions::region); empty when none.
  std::string_view region() const noexcept { return region_; }
  void set_region(std::string_view region) noexcept { region_ = region; }

  /// X-Request-Id: the client's when valid, otherwise generated.
  const std::string& request_id() const noexcept { return request_id_; }
  void set_request_id(std::string id) { request_id_ = std::move(id); }

  /// Written by the Authenticator; null while anonymous. Shared with the verified-token cache, so a cached
  /// token costs no copy.
  std::shared_ptr<const Identity> identity;
  /// Written by the TenantResolver: one tenant, or several for federated queries.
  std::vector<std::string> tenants;

  /// The whole request body, when a policy asked for it (Policy::body_limit). Null otherwise.
  const std::string* buffered_body() const noexcept { return body_ ? &*body_ : nullptr; }
  /// Its hex SHA-256, when a policy asked for it (Policy::needs_body_sha256); null otherwise.
  const std::string* buffered_body_sha256() const noexcept { return body_sha256_.empty() ? nullptr : &body_sha256_; }
  void set_buffered_body(std::string body, std::string sha256_hex = {}) {
    body_ = std::move(body);
    body_sha256_ = std::move(sha256_hex);
  }

  /// Headers put on the response sent to the client: they replace the upstream's of the same name, and response
  /// policies run after them.
  Headers response_headers;

  clock::time_point started() const noexcept { return started_; }

  /// Filled as the exchange proceeds; read by logging and metrics.
  struct Outcome {
    int status = 0;
    std::string upstream;         ///< name of the upstream the request went to
    std::string rejected_by;      ///< rejection code when the gateway answered itself
    const Policy* rejecting_policy = nullptr;  ///< the policy that refused, when one did
    std::uint64_t bytes_in = 0;   ///< request body bytes read from the client
    std::uint64_t bytes_out = 0;  ///< response body bytes sent to the client
    unsigned upstream_tries = 0;
  } outcome;

  /// A slot for embedders' own per-request data.
  std::any user_data;

 private:
  RequestHead request_;
  ConnectionInfo connection_;
  asio::ip::address client_address_;
  std::string client_ip_;
  std::string forwarded_for_;
  std::string client_path_;  // set only when a rewrite changes the path
  std::string_view region_;  // owned by the gateway snapshot the exchange runs on
  const Route* route_ = nullptr;
  std::string request_id_;
  std::optional<std::string> body_;
  std::string body_sha256_;
  clock::time_point started_ = clock::now();
};

}  // namespace obsgw
