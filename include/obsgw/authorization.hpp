#pragma once
/// @file
/// Per-route authorization: what the authenticated identity must hold to use the route (for example push
/// needs `logs:write`, query needs `logs:read`). Refusals are 403 naming what is missing.

#include <memory>
#include <string>
#include <vector>

#include "obsgw/claim_rule.hpp"
#include "obsgw/policy.hpp"

namespace obsgw {

struct AuthorizationOptions {
  std::vector<std::string> scopes;  ///< every one of these scopes
  std::vector<std::string> groups;  ///< at least one of these groups (Identity::groups)
  std::vector<std::string> roles;   ///< at least one of these values of `roles_claim`
  std::string roles_claim = "roles";
  std::vector<ClaimRule> claims;    ///< every rule
};

/// Throws std::invalid_argument when nothing is required.
std::shared_ptr<const Authorizer> make_authorizer(AuthorizationOptions options);

}  // namespace obsgw
