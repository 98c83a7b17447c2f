// obsgw::Headers: case-insensitive lookups and replacements on a typical 12-field request head, the way the
// proxy touches headers per request (a few gets, a few sets of X-Forwarded-* and similar).

#include <benchmark/benchmark.h>

#include "obsgw/headers.hpp"

namespace {

obsgw::Headers typical_headers() {
  obsgw::Headers h;
  h.add("Host", "metrics.example.com");
  h.add("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0");
  h.add("Accept", "application/json, text/plain, */*");
  h.add("Accept-Language", "en-US,en;q=0.5");
  h.add("Accept-Encoding", "gzip, deflate, br");
  h.add("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl");
  h.add("X-Request-Id", "7f3c1d2e-9a4b-4c6d-8e0f-123456789abc");
  h.add("Content-Type", "application/json");
  h.add("Cookie", "session=abc123; theme=dark");
  h.add("Referer", "https://grafana.example.com/d/abc");
  h.add("Origin", "https://grafana.example.com");
  h.add("Connection", "keep-alive");
  return h;
}

void BM_HeadersGet_Hit(benchmark::State& state) {
  const obsgw::Headers h = typical_headers();
  for (auto _ : state) {
    benchmark::DoNotOptimize(h.get("authorization"));  // 6th field, different case
    benchmark::DoNotOptimize(h.get("connection"));     // last field
  }
  state.SetItemsProcessed(2 * static_cast<int64_t>(state.iterations()));
}

void BM_HeadersGet_Miss(benchmark::State& state) {
  const obsgw::Headers h = typical_headers();
  for (auto _ : state) benchmark::DoNotOptimize(h.get("x-forwarded-for"));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Copy the head, then set three forwarding fields (two new, one replaced): what the forwarder does.
void BM_HeadersCopyAndSet(benchmark::State& state) {
  const obsgw::Headers base = typical_headers();
  for (auto _ : state) {
    obsgw::Headers h = base;
    h.set("X-Forwarded-For", "127.0.0.1");
    h.set("X-Forwarded-Proto", "http");
    h.set("Host", "127.0.0.1:8080");
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Baseline for the two benchmarks below: copying the 12-field head alone.
void BM_HeadersCopy(benchmark::State& state) {
  const obsgw::Headers base = typical_headers();
  for (auto _ : state) {
    obsgw::Headers h = base;
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// Copy the head, then remove the hop-by-hop fields (one present, three absent).
void BM_HeadersCopyAndRemoveHopByHop(benchmark::State& state) {
  const obsgw::Headers base = typical_headers();
  for (auto _ : state) {
    obsgw::Headers h = base;
    h.remove("Connection");
    h.remove("Keep-Alive");
    h.remove("Transfer-Encoding");
    h.remove("Upgrade");
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(BM_HeadersGet_Hit);
BENCHMARK(BM_HeadersGet_Miss);
BENCHMARK(BM_HeadersCopy);
BENCHMARK(BM_HeadersCopyAndSet);
BENCHMARK(BM_HeadersCopyAndRemoveHopByHop);
