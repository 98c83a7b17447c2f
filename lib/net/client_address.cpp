#include "net/client_address.hpp"

#include <string_view>
#include <vector>

namespace obsgw::net {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::optional<ResolvedClient> resolve_client(const IpSet& trusted, const asio::ip::address& peer, const Headers& headers) {
  if (trusted.empty() || !trusted.contains(peer) || !headers.contains("x-forwarded-for")) return std::nullopt;
  std::vector<std::string_view> hops;
  for (const auto& f : headers) {
    if (!iequals(f.name, "x-forwarded-for")) continue;
    std::string_view v = f.value;
    while (true) {
      auto comma = v.find(',');
      hops.push_back(trim(v.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  // Walk from the right; `client` ends as the first untrusted address (or the left-most trusted one).
  asio::ip::address client = peer;
  std::size_t first_kept = hops.size();  // hops[first_kept..] are forwarded on
  for (std::size_t i = hops.size(); i-- > 0;) {
    if (hops[i].empty() && hops.size() > 1) continue;  // "a, , b": tolerated empty list element
    auto addr = parse_client_address(hops[i]);
    if (!addr) break;
    client = *addr;
    first_kept = i;
    if (!trusted.contains(*addr)) break;
  }
  ResolvedClient out;
  out.address = client;
  for (std::size_t i = first_kept; i < hops.size(); ++i) {
    if (hops[i].empty()) continue;
    auto addr = parse_client_address(hops[i]);
    if (!out.forwarded_for.empty()) out.forwarded_for += ", ";
    out.forwarded_for += addr->to_string();  // normalised: no ports, no brackets, nothing the client invented
  }
  if (!out.forwarded_for.empty()) out.forwarded_for += ", ";
  auto p = peer;
  if (p.is_v6() && p.to_v6().is_v4_mapped()) p = asio::ip::make_address_v4(asio::ip::v4_mapped, p.to_v6());
  out.forwarded_for += p.to_string();
  return out;
}

}  // namespace obsgw::net
