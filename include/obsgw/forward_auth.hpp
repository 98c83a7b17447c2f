#pragma once
/// @file
/// Forward authentication: a route that, instead of forwarding, answers whether the request may pass — for
/// nginx `auth_request`, Envoy `ext_authz` (HTTP service) and Traefik `forwardAuth`. The route's policies run
/// as usual (authenticate, authorize, tenant, limits); when all of them admit the request the answer is
/// `200` carrying the headers they set (identity, tenant) for the proxy to copy upstream, otherwise their
/// 401/403/429 with the JSON reason.

#include <memory>
#include <string>
#include <vector>

#include "obsgw/forwarder.hpp"
#include "obsgw/policy.hpp"

namespace obsgw {

struct ForwardAuthOptions {
  /// Copied from the request, as the policies left it, into the 200 answer. Client-sent copies are removed
  /// before any policy runs, so only what a policy set can come back.
  std::vector<std::string> response_headers{"X-Scope-OrgID", "X-Auth-Request-User", "X-Auth-Request-Email",
                                            "X-Auth-Request-Groups"};
};

/// The route's terminal step (in place of an upstream). Throws std::invalid_argument for a bad header name.
std::shared_ptr<const Forwarder> make_forward_auth_responder(std::string name, ForwardAuthOptions options);
/// Removes `response_headers` from the client's request — except those a policy of the route owns
/// (Policy::owned_request_headers: it reads, removes and sets them itself, like the tenant resolver with a
/// client-chosen X-Scope-OrgID). Must run before the route's other policies (GatewayBuilder and the config
/// loader put it first).
std::shared_ptr<const Policy> make_forward_auth_guard(ForwardAuthOptions options,
                                                      const std::vector<std::shared_ptr<const Policy>>& route_policies);

}  // namespace obsgw
