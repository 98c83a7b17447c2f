#pragma once
// Config factories of the identity policies: "jwt", "api_key", "introspection", "userinfo", "browser_login",
// "tenant", "authorize" (keys in docs/configuration.md).

#include <memory>

#include "obsgw/config_node.hpp"
#include "obsgw/forward_auth.hpp"
#include "obsgw/policy.hpp"

namespace obsgw::config {

std::shared_ptr<const Policy> make_jwt_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_tenant_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_authorize_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_api_key_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_introspection_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_userinfo_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_browser_login_policy(const ConfigNode& node, ConfigProblems& p);

// A route's "forward_auth": true, or an object {"response_headers": [...]}.
ForwardAuthOptions read_forward_auth(const ConfigNode& node, ConfigProblems& p);

}  // namespace obsgw::config
