#pragma once
// Config factories of the request-signature policies: "sign" (Signer) and "hmac" (Authenticator).

#include <memory>

#include "obsgw/config_node.hpp"
#include "obsgw/policy.hpp"

namespace obsgw::config {

std::shared_ptr<const Policy> make_sign_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_hmac_policy(const ConfigNode& node, ConfigProblems& p);

}  // namespace obsgw::config
