#include "proxy/hop_by_hop.hpp"

#include <string>
#include <vector>

#include "http/char_classes.hpp"

namespace obsgw::proxy {

void remove_hop_by_hop(Headers& headers, bool keep_upgrade) {
  std::vector<std::string> named;
  for (const auto& f : headers)
    if (iequals(f.name, "connection"))
      http::for_each_list_item(f.value, [&](std::string_view t) { named.emplace_back(t); });
  headers.remove_if([&](const HeaderView& f) {
    std::string_view n = f.name;
    if (iequals(n, "connection") || iequals(n, "keep-alive") || iequals(n, "te") || iequals(n, "trailer") ||
        iequals(n, "transfer-encoding") || iequals(n, "content-length") || iequals(n, "expect") ||
        iequals(n, "http2-settings"))
      return true;
    if (n.size() >= 6 && iequals(n.substr(0, 6), "proxy-")) return true;
    if (iequals(n, "upgrade")) return !keep_upgrade;
    for (const auto& t : named)
      if (iequals(n, t) && !(keep_upgrade && iequals(t, "upgrade"))) return true;
    return false;
  });
}

bool is_proxy_managed(std::string_view name) noexcept {
  for (std::string_view managed : {"content-length", "transfer-encoding", "connection", "host", "upgrade", "te", "trailer",
                                   "keep-alive"})
    if (iequals(name, managed)) return true;
  return name.size() >= 6 && iequals(name.substr(0, 6), "proxy-");
}

bool is_credential_header(std::string_view name) noexcept {
  return iequals(name, "authorization") || iequals(name, "cookie") || iequals(name, "proxy-authorization");
}

}  // namespace obsgw::proxy
