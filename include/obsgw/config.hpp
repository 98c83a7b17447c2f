#pragma once
/// @file
/// The declarative configuration (one JSON file) and how it becomes a Gateway.
/// Every key, its type and its default: docs/configuration.md.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "obsgw/config_node.hpp"
#include "obsgw/forward_auth.hpp"
#include "obsgw/forwarder.hpp"
#include "obsgw/gateway.hpp"
#include "obsgw/ip_set.hpp"
#include "obsgw/logger.hpp"
#include "obsgw/policy.hpp"
#include "obsgw/router.hpp"
#include "obsgw/server_options.hpp"

namespace obsgw {

/// Thrown by the loader; what() lists every problem, one per line, each starting with its path.
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

struct LoggingOptions {
  LogLevel level = LogLevel::info;
  bool access_log = true;
};

struct RouteConfig {
  std::string name;
  RouteMatch match;
  std::string upstream;
  std::string rewrite_prefix;
  bool has_rewrite = false;
  RouteRetry retry;
  bool trust_client_tenant_header = false;  ///< see Route::trust_client_tenant_header
  std::vector<ConfigNode> policies;  ///< each an object with a "type"
  std::optional<ForwardAuthOptions> forward_auth;  ///< set: the route answers forward-auth checks (no upstream)
};

struct Config {
  ServerOptions server;
  LoggingOptions logging;
  IpSet trusted_proxies;               ///< "client_ip.trusted_proxies"
  std::string region;                  ///< "region"
  std::vector<ConfigNode> policies;    ///< "policies": run on every route, before the route's own within a phase
  std::vector<UpstreamOptions> upstreams;
  std::vector<RouteConfig> routes;
};

/// Builds a policy from its config object; records problems instead of throwing.
using PolicyFactory = std::function<std::shared_ptr<const Policy>(const ConfigNode& node, ConfigProblems& problems)>;

/// Maps a policy "type" to its factory. The default registry knows the built-in policies;
/// embedders add their own before loading.
class PolicyRegistry {
 public:
  static PolicyRegistry with_builtins();
  void add(std::string type, PolicyFactory factory);
  const PolicyFactory* find(std::string_view type) const;
  std::vector<std::string> types() const;

 private:
  std::map<std::string, PolicyFactory, std::less<>> factories_;
};

/// Parses and validates a config. Throws ConfigError listing every problem.
Config parse_config(std::string_view json, const PolicyRegistry& registry = PolicyRegistry::with_builtins());
/// Reads and parses a file. Throws ConfigError (also for an unreadable file).
Config load_config_file(const std::string& path, const PolicyRegistry& registry = PolicyRegistry::with_builtins());

/// Builds the Gateway snapshot a Config describes. Throws ConfigError.
std::shared_ptr<const Gateway> build_gateway(const Config& config, unsigned io_threads,
                                             const PolicyRegistry& registry = PolicyRegistry::with_builtins());

}  // namespace obsgw
