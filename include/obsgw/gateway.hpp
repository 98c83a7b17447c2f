#pragma once
/// @file
/// An immutable snapshot of what the gateway does: the routes with their policies and upstreams.
/// A reload builds a new Gateway and swaps it in; in-flight requests finish on the one they started with.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "obsgw/forward_auth.hpp"
#include "obsgw/forwarder.hpp"
#include "obsgw/ip_set.hpp"
#include "obsgw/router.hpp"

namespace obsgw {

struct GatewayOptions {
  bool access_log = true;  ///< one JSON line per request
  /// Peers whose X-Forwarded-For is believed: the client is then the right-most untrusted address in it
  /// (Exchange::client_address). Empty: the peer is always the client and X-Forwarded-For is replaced.
  IpSet trusted_proxies;
  /// This gateway's region (edge deployments): sent upstream as X-Gateway-Region, shown in /stats, usable as
  /// ${region} in header templates. Empty: none.
  std::string region;
};

class Gateway {
 public:
  Gateway(Router router, std::vector<std::shared_ptr<const Forwarder>> upstreams, GatewayOptions options = {});

  const Router& router() const noexcept { return router_; }
  const std::vector<std::shared_ptr<const Forwarder>>& upstreams() const noexcept { return upstreams_; }
  const GatewayOptions& options() const noexcept { return options_; }

 private:
  Router router_;
  std::vector<std::shared_ptr<const Forwarder>> upstreams_;
  GatewayOptions options_;
};

/// Builds a Gateway in code, without a config file.
///
///   GatewayBuilder b(io_threads);
///   b.upstream({.name = "loki", .url = "http://127.0.0.1:3100"});
///   b.route("push").path_prefix("/loki/api/v1/push").methods({"POST"}).to("loki").use(my_policy);
///   auto gateway = b.build();
class GatewayBuilder {
 public:
  explicit GatewayBuilder(unsigned io_threads);

  /// Declares an HTTP(S) upstream.
  GatewayBuilder& upstream(UpstreamOptions options);
  /// Declares an upstream served by any Forwarder.
  GatewayBuilder& upstream(std::shared_ptr<const Forwarder> forwarder);

  class RouteBuilder {
   public:
    RouteBuilder& host(std::string host);
    RouteBuilder& path(std::string exact_path);
    RouteBuilder& path_prefix(std::string prefix);
    RouteBuilder& methods(std::vector<std::string> methods);
    RouteBuilder& rewrite_prefix(std::string replacement);
    RouteBuilder& to(std::string upstream_name);
    RouteBuilder& use(std::shared_ptr<const Policy> policy);
    /// Passes a client-sent X-Scope-OrgID on unchecked on a route that authenticates without resolving a
    /// tenant (see Route::trust_client_tenant_header).
    RouteBuilder& trust_client_tenant_header(bool trust = true);
    /// Makes this a forward-auth route (no upstream): see forward_auth.hpp.
    RouteBuilder& forward_auth(ForwardAuthOptions options = {});

   private:
    friend class GatewayBuilder;
    Route route_;
    std::string upstream_;
    std::optional<ForwardAuthOptions> forward_auth_;
  };
  /// Adds a route; routes are matched as Router documents.
  RouteBuilder& route(std::string name);

  GatewayBuilder& options(GatewayOptions options);
  /// Throws std::invalid_argument when a route names an unknown upstream or is invalid.
  std::shared_ptr<const Gateway> build();

 private:
  unsigned io_threads_;
  std::vector<std::shared_ptr<const Forwarder>> upstreams_;
  std::vector<std::unique_ptr<RouteBuilder>> routes_;
  GatewayOptions options_;
};

}  // namespace obsgw
