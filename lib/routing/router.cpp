#include "obsgw/router.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "obsgw/tenant_resolver.hpp"
#include "server/metrics.hpp"

namespace obsgw {

namespace {
std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

bool prefix_matches(std::string_view prefix, std::string_view path) {
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

bool method_allowed(const Route& r, std::string_view method) {
  if (r.match.methods.empty()) return true;
  return std::find(r.match.methods.begin(), r.match.methods.end(), method) != r.match.methods.end();
}
}  // namespace

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    Route& r = routes_[i];
    if (r.name.empty()) throw std::invalid_argument(fmt::format("route #{} has no name", i));
    if (!names.insert(r.name).second) throw std::invalid_argument(fmt::format("route \"{}\" is defined twice", r.name));
    if (r.match.path.empty() || r.match.path.front() != '/')
      throw std::invalid_argument(fmt::format("route \"{}\": path must start with '/'", r.name));
    if (!r.forwarder) throw std::invalid_argument(fmt::format("route \"{}\" has no upstream", r.name));
    for (const auto& p : r.policies)
      if (!p) throw std::invalid_argument(fmt::format("route \"{}\" has a null policy", r.name));
    const auto has_phase = [&](Phase phase) {
      return std::any_of(r.policies.begin(), r.policies.end(), [&](const auto& p) { return p->phase() == phase; });
    };
    if (has_phase(Phase::authenticate) && !has_phase(Phase::resolve_tenant) && !r.trust_client_tenant_header &&
        !r.forward_auth)
      r.policies.push_back(make_client_tenant_header_remover());
    std::stable_sort(r.policies.begin(), r.policies.end(),
                     [](const auto& a, const auto& b) { return a->phase() < b->phase(); });
    r.body_limit_ = 0;
    for (const auto& p : r.policies) r.body_limit_ = std::max(r.body_limit_, p->body_limit());
    r.keeps_signature_headers = false;
    for (const auto& p : r.policies)
      for (const auto& h : p->owned_request_headers()) r.keeps_signature_headers |= iequals(h, "X-Gateway-Signature");
    if (!r.counters) r.counters = detail::Metrics::instance().route(r.name);
    r.match.host = lower(r.match.host);

    const std::string& host = r.match.host;
    if (host.empty() || host == "*") {
      add_to_group(any_host_, i);
    } else if (host.size() > 2 && host.compare(0, 2, "*.") == 0) {
      std::string suffix = host.substr(1);
      auto it = std::find_if(wildcard_hosts_.begin(), wildcard_hosts_.end(), [&](const HostGroup& g) { return g.suffix == suffix; });
      if (it == wildcard_hosts_.end()) {
        wildcard_hosts_.push_back(HostGroup{suffix, {}, {}});
        it = std::prev(wildcard_hosts_.end());
      }
      add_to_group(*it, i);
    } else {
      auto it = std::find_if(exact_hosts_.begin(), exact_hosts_.end(), [&](const auto& p) { return p.first == host; });
      if (it == exact_hosts_.end()) {
        exact_hosts_.emplace_back(host, HostGroup{});
        it = std::prev(exact_hosts_.end());
      }
      add_to_group(it->second, i);
    }
  }
  std::stable_sort(wildcard_hosts_.begin(), wildcard_hosts_.end(),
                   [](const HostGroup& a, const HostGroup& b) { return a.suffix.size() > b.suffix.size(); });
  std::sort(exact_hosts_.begin(), exact_hosts_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
}

void Router::add_to_group(HostGroup& g, std::size_t index) {
  if (routes_[index].match.prefix) {
    g.prefix.push_back(index);
    std::stable_sort(g.prefix.begin(), g.prefix.end(), [this](std::size_t a, std::size_t b) {
      return routes_[a].match.path.size() > routes_[b].match.path.size();
    });
  } else {
    g.exact.push_back(index);
  }
}

// Finds the most specific path match in a host group: the routes with an equal exact path, else those with the
// longest matching prefix. Among them the first whose methods allow the request wins; if none does, the search
// ends with 405 (the methods of a route are access control: a request must not slip past them to a less
// specific route). Returns false only when no route of the group matches the path at all.
bool Router::match_group(const HostGroup& g, std::string_view path, std::string_view method, Match& m) const {
  auto choose = [&](auto&& indexes, auto&& in_tier) {
    bool any = false;
    for (std::size_t i : indexes) {
      if (!in_tier(routes_[i])) continue;
      any = true;
      const Route& r = routes_[i];
      if (method_allowed(r, method)) {
        m.route = &r;
        m.allow.clear();
        return true;
      }
      for (const auto& allowed : r.match.methods) {
        bool listed = false;
        std::string_view rest = m.allow;
        while (!rest.empty()) {
          auto comma = rest.find(", ");
          if (rest.substr(0, comma) == allowed) listed = true;
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 2);
        }
        if (!listed) m.allow += (m.allow.empty() ? "" : ", ") + allowed;
      }
    }
    return any;
  };
  if (choose(g.exact, [&](const Route& r) { return r.match.path == path; })) return true;
  // g.prefix is sorted longest first: the tier is every route with the length of the first that matches.
  std::size_t tier_length = std::string::npos;
  for (std::size_t i : g.prefix)
    if (prefix_matches(routes_[i].match.path, path)) {
      tier_length = routes_[i].match.path.size();
      break;
    }
  if (tier_length == std::string::npos) return false;
  return choose(g.prefix, [&](const Route& r) {
    return r.match.path.size() == tier_length && prefix_matches(r.match.path, path);
  });
}

Router::Match Router::match(std::string_view host, std::string_view path, std::string_view method) const {
  Match m;
  if (!exact_hosts_.empty()) {
    auto it = std::lower_bound(exact_hosts_.begin(), exact_hosts_.end(), host,
                               [](const auto& p, std::string_view h) { return p.first < h; });
    if (it != exact_hosts_.end() && it->first == host && match_group(it->second, path, method, m)) return m;
  }
  for (const auto& g : wildcard_hosts_) {
    if (host.size() > g.suffix.size() && host.compare(host.size() - g.suffix.size(), g.suffix.size(), g.suffix) == 0 &&
        match_group(g, path, method, m))
      return m;
  }
  match_group(any_host_, path, method, m);
  return m;
}

}  // namespace obsgw
