#pragma once
/// @file
/// Routes and the Router that picks one for a request.
///
/// Precedence, from strongest to weakest:
///  1. host: an exact host beats a wildcard `*.example.com` (longer suffix first), which beats "any host";
///  2. path: an exact path beats a prefix; a longer prefix beats a shorter one. A prefix matches at a segment
///     boundary: `/api` matches `/api` and `/api/x`, not `/apix` (a prefix ending in `/` matches anything under it);
///  3. among routes with that same host and path, the first declared whose methods allow the request.
/// When the most specific routes for the host and path all exclude the request's method, the answer is 405: a
/// request never slips past a route's method list to a less specific route.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "obsgw/forwarder.hpp"
#include "obsgw/policy.hpp"

namespace obsgw {

namespace detail {
struct RouteCounters;
}

struct RouteMatch {
  std::string host;                  ///< "" = any host; "api.example.com"; "*.example.com"
  std::string path = "/";            ///< must start with '/'
  bool prefix = true;                ///< false: the path must be equal
  std::vector<std::string> methods;  ///< empty = any method
};

/// Which of a route's requests the forwarder may send again (UpstreamOptions::retry says how often).
struct RouteRetry {
  /// Also repeat non-idempotent methods (POST pushes to Loki, Mimir and Tempo are safe to repeat): their body is
  /// then read whole first when its Content-Length is at most `max_body_bytes`; larger or chunked bodies stream
  /// and are not repeated.
  bool unsafe_methods = false;
  std::size_t max_body_bytes = 1u << 20;
};

struct Route {
  std::string name;
  RouteMatch match;
  std::shared_ptr<const Forwarder> forwarder;
  /// Policies; the Router keeps them ordered by phase (stable within a phase).
  std::vector<std::shared_ptr<const Policy>> policies;
  /// When set on a prefix route, the matched prefix is replaced by this before forwarding.
  std::string rewrite_prefix;
  bool has_rewrite = false;
  RouteRetry retry;
  /// A route that authenticates but has no tenant policy drops a client-sent `X-Scope-OrgID` after
  /// authentication (the gateway cannot vouch for it, and a multi-tenant backend would take it as the tenant).
  /// Set this to pass it on unchecked (a single-tenant upstream, or one that checks the header itself).
  bool trust_client_tenant_header = false;
  /// The route answers forward-auth checks itself (forward_auth.hpp): nothing is forwarded, and the proxy in
  /// front decides which headers reach its upstream (the guard keeps clients from setting those it copies).
  bool forward_auth = false;

  /// Largest Policy::body_limit() among the policies (0: the body is streamed).
  std::size_t body_limit() const noexcept { return body_limit_; }

  // Set by the Router.
  std::size_t body_limit_ = 0;
  bool keeps_signature_headers = false;  ///< a policy owns X-Gateway-Signature (verifies signed clients)
  std::shared_ptr<detail::RouteCounters> counters;
};

class Router {
 public:
  /// Validates the routes (names unique and non-empty, paths start with '/', forwarder set) and orders
  /// each route's policies by phase. Throws std::invalid_argument naming the route.
  explicit Router(std::vector<Route> routes);

  struct Match {
    const Route* route = nullptr;  ///< null: no route
    std::string allow;             ///< when no route but the most specific ones refused the method: "GET, POST"
  };
  /// `host` lower-case without port; `path` normalised.
  Match match(std::string_view host, std::string_view path, std::string_view method) const;

  const std::vector<Route>& routes() const noexcept { return routes_; }
  /// False when every route matches any host (then match() ignores `host`).
  bool uses_hosts() const noexcept { return !exact_hosts_.empty() || !wildcard_hosts_.empty(); }

 private:
  struct HostGroup {
    std::string suffix;  // for wildcards: ".example.com"
    std::vector<std::size_t> exact;   // route indexes with exact paths, declaration order
    std::vector<std::size_t> prefix;  // route indexes with prefixes, longest first, then declaration order
  };
  void add_to_group(HostGroup& g, std::size_t index);
  bool match_group(const HostGroup& g, std::string_view path, std::string_view method, Match& m) const;

  std::vector<Route> routes_;
  std::vector<std::pair<std::string, HostGroup>> exact_hosts_;  // sorted by host
  std::vector<HostGroup> wildcard_hosts_;                       // longest suffix first
  HostGroup any_host_;
};

}  // namespace obsgw
