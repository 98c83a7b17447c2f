#include "proxy/upstream_url.hpp"

#include "http/char_classes.hpp"
#include "http/request_parser.hpp"
#include "obsgw/headers.hpp"

namespace obsgw::proxy {

std::optional<UpstreamUrl> parse_upstream_url(const std::string& url, std::string& error) {
  UpstreamUrl u;
  std::string_view rest = url;
  if (rest.size() > 7 && iequals(rest.substr(0, 7), "http://")) {
    rest.remove_prefix(7);
  } else if (rest.size() > 8 && iequals(rest.substr(0, 8), "https://")) {
    rest.remove_prefix(8);
    u.tls = true;
  } else {
    error = "must start with http:// or https://";
    return std::nullopt;
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) {
    error = "must not contain a query or fragment";
    return std::nullopt;
  }
  for (char c : path)
    if (!http::is_target_char(c)) {
      error = "has a character that is not allowed in a URL path (percent-encode it)";
      return std::nullopt;
    }
  if (!http::is_valid_authority(authority) || authority.find('@') != std::string_view::npos) {
    error = "has an invalid host or port";
    return std::nullopt;
  }
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) port = authority.substr(close + 2);
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  unsigned p = u.tls ? 443 : 80;
  if (!port.empty()) {
    p = 0;
    for (char c : port) p = p * 10 + static_cast<unsigned>(c - '0');
    if (p == 0 || p > 65535) {
      error = "has a port out of range";
      return std::nullopt;
    }
  }
  u.host.assign(host);
  u.port = static_cast<std::uint16_t>(p);
  u.authority.assign(authority);
  if ((u.tls && p == 443) || (!u.tls && p == 80)) {
    u.authority = authority.front() == '[' ? std::string(authority.substr(0, authority.find(']') + 1)) : u.host;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  u.base_path.assign(path);
  return u;
}

}  // namespace obsgw::proxy
