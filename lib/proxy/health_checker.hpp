#pragma once
// Active health checks of an upstream's endpoints, on the background loop (never an io thread): GET the check
// path with the upstream's Host on every endpoint each interval; 2xx passes. An endpoint is taken out after
// `unhealthy_threshold` failures in a row and back after `healthy_threshold` passes.

#include <memory>
#include <string>

#include <asio/ssl/context.hpp>

#include "obsgw/forwarder.hpp"
#include "proxy/endpoint_set.hpp"

namespace obsgw::proxy {

struct HealthTarget {
  std::string upstream;
  std::shared_ptr<EndpointSet> endpoints;
  HealthCheckOptions options;
  std::string authority;  // Host header
  std::string base_path;  // prepended to the check path, as for requests
  std::shared_ptr<asio::ssl::context> tls;  // null: plain HTTP
  std::string server_name;
  bool tls_verify = true;
};

// Checks until `target` expires (the forwarder was retired by a reload) or the process exits.
void start_health_checks(std::weak_ptr<const HealthTarget> target);

}  // namespace obsgw::proxy
