#include "obsgw/server_options.hpp"

namespace obsgw {

std::optional<ListenerOptions> parse_listen_address(const std::string& text) {
  ListenerOptions l;
  std::string_view s = text;
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  if (port.empty() || port.size() > 5) return std::nullopt;
  unsigned p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p > 65535) return std::nullopt;
  l.host = host.empty() ? "0.0.0.0" : std::string(host);
  l.port = static_cast<std::uint16_t>(p);
  return l;
}

}  // namespace obsgw
