// Request head parsing: a typical ~400-byte browser/API request, parsed from scratch each iteration
// (RequestParser::reset() + parse()), as the server does for every request on a keep-alive connection.

#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "http/request_parser.hpp"

namespace {

// A realistic request head: a query string, a bearer token, the usual browser/API client fields.
const std::string kTypicalHead =
    "GET /api/v1/query_range?query=sum(rate(http_requests_total%5B5m%5D))&start=1700000000&step=15 HTTP/1.1\r\n"
    "Host: metrics.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Firefox/120.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl\r\n"
    "X-Request-Id: 7f3c1d2e-9a4b-4c6d-8e0f-123456789abc\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

const std::string kPostHead =
    "POST /api/v1/push HTTP/1.1\r\n"
    "Host: logs.example.com\r\n"
    "User-Agent: promtail/2.9.2\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 10240\r\n"
    "X-Scope-OrgID: acme\r\n"
    "\r\n";

void run_parser(benchmark::State& state, const std::string& head) {
  obsgw::http::RequestParser parser{obsgw::HttpLimits{}};
  obsgw::RequestHead out;
  for (auto _ : state) {
    parser.reset();
    out = obsgw::RequestHead{};
    auto st = parser.parse(head, out);
    if (st != obsgw::http::RequestParser::State::complete) {
      state.SkipWithError("parse did not complete");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(head.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["head_bytes"] = static_cast<double>(head.size());
}

void BM_ParseRequestHead_Typical(benchmark::State& state) { run_parser(state, kTypicalHead); }
void BM_ParseRequestHead_Post(benchmark::State& state) { run_parser(state, kPostHead); }

// The same head arriving in two reads (split in the middle of a field), as on a slow client.
void BM_ParseRequestHead_TwoReads(benchmark::State& state) {
  obsgw::http::RequestParser parser{obsgw::HttpLimits{}};
  obsgw::RequestHead out;
  const std::string_view whole = kTypicalHead;
  const std::string_view first = whole.substr(0, whole.size() / 2);
  for (auto _ : state) {
    parser.reset();
    out = obsgw::RequestHead{};
    auto a = parser.parse(first, out);
    auto b = parser.parse(whole, out);
    if (a != obsgw::http::RequestParser::State::incomplete || b != obsgw::http::RequestParser::State::complete) {
      state.SkipWithError("unexpected parser state");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(whole.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(BM_ParseRequestHead_Typical);
BENCHMARK(BM_ParseRequestHead_Post);
BENCHMARK(BM_ParseRequestHead_TwoReads);
