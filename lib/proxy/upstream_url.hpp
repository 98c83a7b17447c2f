#pragma once
// The parts of an upstream URL the forwarder needs.

#include <cstdint>
#include <optional>
#include <string>

namespace obsgw::proxy {

struct UpstreamUrl {
  bool tls = false;
  std::string host;       // without brackets for IPv6
  std::uint16_t port = 0;
  std::string authority;  // for the Host header: host[:port], port omitted when default
  std::string base_path;  // "" or "/prefix" without trailing slash
};

// Parses http://host[:port][/path] and https://...; nullopt with `error` set when invalid.
std::optional<UpstreamUrl> parse_upstream_url(const std::string& url, std::string& error);

}  // namespace obsgw::proxy
