// Builds a gateway from a config string with the installed library and checks that it routes.
#include <iostream>

#include <obsgw/obsgw.hpp>

int main() {
  auto config = obsgw::parse_config(R"({
    "upstreams": {"loki": {"url": "http://127.0.0.1:3100"}},
    "routes": [{"name": "push", "match": {"path": "/loki/api/v1/push", "methods": ["POST"]}, "upstream": "loki"}]
  })");
  auto gateway = obsgw::build_gateway(config, 1);
  auto match = gateway->router().match("any", "/loki/api/v1/push", "POST");
  if (!match.route || match.route->name != "push") {
    std::cerr << "consumer: routing failed\n";
    return 1;
  }
  std::cout << "consumer: obsgw found with find_package; route \"" << match.route->name << "\" matched\n";
  return 0;
}
