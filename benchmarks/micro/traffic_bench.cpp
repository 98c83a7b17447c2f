// Traffic-policy hot paths: a rate-limit decision on the in-process store (per-IP + per-tenant, as an edge route
// has them), IP rule lookups, and request signing (HMAC-SHA256 of the canonical string plus SHA-256 of the body).

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "obsgw/ip_rules.hpp"
#include "obsgw/rate_limiter.hpp"
#include "obsgw/request_signature.hpp"
#include "obsgw/signing_policies.hpp"

namespace {

using namespace std::chrono_literals;

std::vector<std::unique_ptr<obsgw::Exchange>> exchanges(int clients) {
  std::vector<std::unique_ptr<obsgw::Exchange>> out;
  for (int i = 0; i < clients; ++i) {
    obsgw::ConnectionInfo c;
    c.peer_address = asio::ip::make_address_v4(0xC0000200u + static_cast<unsigned>(i % 250));  // 192.0.2.x
    obsgw::RequestHead head;
    head.method = "POST";
    head.path = "/loki/api/v1/push";
    auto ex = std::make_unique<obsgw::Exchange>(std::move(head), c);
    ex->tenants = {"tenant-" + std::to_string(i % 20)};
    out.push_back(std::move(ex));
  }
  return out;
}

// Never refuses (limits far above the rate measured): the cost of deciding, not of refusing.
void BM_RateLimitDecision(benchmark::State& state) {
  obsgw::RateLimitOptions o;
  obsgw::LimitSpec ip, tenant;
  ip.name = "bench-ip";
  ip.key = obsgw::LimitKey::client_ip;
  tenant.name = "bench-tenant";
  tenant.key = obsgw::LimitKey::tenant;
  for (auto* l : {&ip, &tenant}) l->rate = 1e9, l->period = 1s;
  o.limits = {ip, tenant};
  o.response_headers = state.range(0) != 0;
  auto limiter = obsgw::make_rate_limiter(o);
  auto ex = exchanges(1000);
  std::size_t i = 0;
  for (auto _ : state) {
    auto& e = *ex[i++ % ex.size()];
    e.response_headers.clear();
    auto v = limiter->on_request(e);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RateLimitDecision)->Arg(0)->Arg(1)->ArgName("headers");

void BM_IpRules(benchmark::State& state) {
  obsgw::IpRulesOptions o;
  o.allow = obsgw::IpSet::from({"10.0.0.0/8", "172.16.0.0/12", "192.0.2.0/24", "2001:db8::/32", "198.51.100.*"});
  o.deny = obsgw::IpSet::from({"192.0.2.66", "10.6.6.0/24"});
  auto rules = obsgw::make_ip_rules(o);
  auto ex = exchanges(250);
  std::size_t i = 0;
  for (auto _ : state) {
    auto v = rules->on_request(*ex[i++ % ex.size()]);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_IpRules);

// The whole Signer step for a body of range(0) bytes: body SHA-256, canonical string, HMAC, five headers.
void BM_SignRequest(benchmark::State& state) {
  auto key = std::make_shared<const obsgw::SigningKey>("bench", std::string(32, 'k'));
  auto signer = obsgw::make_request_signer({.key = key, .headers = {"x-scope-orgid", "content-type"}});
  obsgw::RequestHead head;
  head.method = "POST";
  head.path = "/loki/api/v1/push";
  head.headers.add("Content-Type", "application/x-protobuf");
  head.headers.add("X-Scope-OrgID", "tenant-1");
  obsgw::Exchange ex(std::move(head), obsgw::ConnectionInfo{});
  ex.set_buffered_body(std::string(static_cast<std::size_t>(state.range(0)), 'x'));
  for (auto _ : state) {
    auto v = signer->on_request(ex);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SignRequest)->Arg(1024)->Arg(10240)->Arg(16384);

// HMAC-SHA256 alone over 1 KB and 16 KB (the micro-benchmark sizes).
void BM_HmacSha256(benchmark::State& state) {
  obsgw::SigningKey key("bench", std::string(32, 'k'));
  const std::string data(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(key.sign(data));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_HmacSha256)->Arg(1024)->Arg(16384);

}  // namespace
