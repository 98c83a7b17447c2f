#include "proxy/hop_by_hop.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

#include "http/char_classes.hpp"

namespace obsgw::proxy {

void remove_hop_by_hop(Headers& headers, bool keep_upgrade) {
  // The names a Connection header lists, as views into the list's own storage (removing fields does not move
  // it). Nearly every message names one or two ("keep-alive", "close"): those stay off the heap.
  std::array<std::string_view, 4> few;
  std::size_t count = 0;
  std::vector<std::string_view> more;
  for (const auto& f : headers)
    if (iequals(f.name, "connection"))
      http::for_each_list_item(f.value, [&](std::string_view t) {
        if (count < few.size()) few[count++] = t;
        else more.push_back(t);
      });
  auto named = [&](std::string_view n) {
    auto listed = [&](std::string_view t) { return iequals(n, t) && !(keep_upgrade && iequals(t, "upgrade")); };
    return std::any_of(few.begin(), few.begin() + static_cast<std::ptrdiff_t>(count), listed) ||
           std::any_of(more.begin(), more.end(), listed);
  };
  headers.remove_if([&](const HeaderView& f) {
    std::string_view n = f.name;
    if (iequals(n, "connection") || iequals(n, "keep-alive") || iequals(n, "te") || iequals(n, "trailer") ||
        iequals(n, "transfer-encoding") || iequals(n, "content-length") || iequals(n, "expect") ||
        iequals(n, "http2-settings"))
      return true;
    if (n.size() >= 6 && iequals(n.substr(0, 6), "proxy-")) return true;
    if (iequals(n, "upgrade")) return !keep_upgrade;
    return named(n);
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
