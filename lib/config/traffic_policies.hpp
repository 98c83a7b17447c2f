#pragma once
// Config factories of the traffic policies: "ip_rules", "rate_limit", "quota" (keys in docs/configuration.md).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "obsgw/config_node.hpp"
#include "obsgw/ip_set.hpp"
#include "obsgw/policy.hpp"
#include "obsgw/redis_limit_store.hpp"

namespace obsgw::config {

std::shared_ptr<const Policy> make_ip_rules_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_rate_limit_policy(const ConfigNode& node, ConfigProblems& p);
std::shared_ptr<const Policy> make_quota_policy(const ConfigNode& node, ConfigProblems& p);

// A list of addresses, CIDR networks and IPv4 wildcards; each bad entry is reported at its own path.
IpSet read_ip_set(const ConfigNode& parent, std::string_view key, ConfigProblems& p);

// The top-level "redis" section (shared by every policy that uses store "redis").
std::optional<RedisOptions> read_redis_options(const ConfigNode& node, ConfigProblems& p);

// The limit names a "rate_limit" node declares (explicit or defaulted), to check that they are unique.
std::vector<std::pair<std::string, std::string>> rate_limit_names(const ConfigNode& node);  // (name, path)

}  // namespace obsgw::config
