#pragma once
/// @file
/// Allow and deny lists of client addresses (Exchange::client_address, after trusted proxies).

#include <memory>

#include "obsgw/ip_set.hpp"
#include "obsgw/policy.hpp"

namespace obsgw {

struct IpRulesOptions {
  IpSet allow;  ///< when not empty, only these addresses pass (403 ip_not_allowed)
  IpSet deny;   ///< these never pass, even when allowed (403 ip_denied)
};

/// Runs in Phase::admit: a refused address costs no token verification.
std::shared_ptr<const Policy> make_ip_rules(IpRulesOptions options);

}  // namespace obsgw
