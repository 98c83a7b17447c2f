// Router lookup with 100 routes: exact paths, path prefixes, exact hosts and wildcard hosts, some limited
// to methods. Each benchmark cycles through a fixed set of requests so that no single branch dominates.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "obsgw/forwarder.hpp"
#include "obsgw/router.hpp"

namespace {

struct Lookup {
  std::string host, path, method;
};

obsgw::Route make_route(std::string name, std::string host, std::string path, bool prefix,
                        std::vector<std::string> methods,
                        const std::shared_ptr<const obsgw::Forwarder>& fwd) {
  obsgw::Route r;
  r.name = std::move(name);
  r.match.host = std::move(host);
  r.match.path = std::move(path);
  r.match.prefix = prefix;
  r.match.methods = std::move(methods);
  r.forwarder = fwd;
  return r;
}

// 100 routes: 30 exact paths, 40 prefixes (any host), 20 exact hosts, 10 wildcard hosts.
const obsgw::Router& hundred_route_router() {
  static const obsgw::Router router = [] {
    obsgw::UpstreamOptions upstream;  // never contacted: a Route just needs a forwarder
    upstream.name = "u";
    upstream.url = "http://127.0.0.1:1";
    auto fwd = obsgw::make_http_forwarder(upstream, 1);
    std::vector<obsgw::Route> routes;
    for (int i = 0; i < 30; ++i)
      routes.push_back(make_route("exact" + std::to_string(i), "", "/api/v1/exact/" + std::to_string(i), false,
                                  i % 3 == 0 ? std::vector<std::string>{"GET"} : std::vector<std::string>{}, fwd));
    for (int i = 0; i < 40; ++i)
      routes.push_back(make_route("prefix" + std::to_string(i), "", "/svc" + std::to_string(i) + "/v" + std::to_string(i % 4),
                                  true, i % 5 == 0 ? std::vector<std::string>{"GET", "POST"} : std::vector<std::string>{}, fwd));
    for (int i = 0; i < 20; ++i)
      routes.push_back(make_route("host" + std::to_string(i), "tenant" + std::to_string(i) + ".example.com",
                                  i % 2 ? "/" : "/api", true, {}, fwd));
    for (int i = 0; i < 9; ++i)
      routes.push_back(make_route("wild" + std::to_string(i), "*.region" + std::to_string(i) + ".example.com", "/", true, {}, fwd));
    routes.push_back(make_route("fallback", "", "/", true, {}, fwd));
    return obsgw::Router(std::move(routes));
  }();
  return router;
}

const std::vector<Lookup> kLookups = {
    {"api.example.com", "/api/v1/exact/17", "GET"},            // exact path, any host
    {"api.example.com", "/svc33/v1/items/42", "GET"},          // prefix deep in the list
    {"api.example.com", "/svc0/v0/push", "POST"},              // prefix with a method list
    {"tenant7.example.com", "/anything/here", "GET"},          // exact host, prefix "/"
    {"tenant12.example.com", "/api/v1/query", "GET"},          // exact host, prefix "/api"
    {"gw.region5.example.com", "/metrics", "GET"},             // wildcard host
    {"api.example.com", "/nothing/matches/here", "GET"},       // falls through to "/"
    {"tenant3.example.com", "/api/v1/exact/3", "DELETE"},      // exact host beats an any-host exact path
};

void BM_RouterMatch_Mix(benchmark::State& state) {
  const auto& router = hundred_route_router();
  std::size_t i = 0;
  for (auto _ : state) {
    const Lookup& l = kLookups[i];
    i = (i + 1) % kLookups.size();
    auto m = router.match(l.host, l.path, l.method);
    benchmark::DoNotOptimize(m.route);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Worst case for the any-host group: a path that is compared against every exact and prefix route.
void BM_RouterMatch_Fallback(benchmark::State& state) {
  const auto& router = hundred_route_router();
  for (auto _ : state) {
    auto m = router.match("unknown.example.org", "/zzz/not/routed", "GET");
    benchmark::DoNotOptimize(m.route);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(BM_RouterMatch_Mix);
BENCHMARK(BM_RouterMatch_Fallback);
