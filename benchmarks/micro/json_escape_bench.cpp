// JSON string escaping (access log and error bodies): plain ASCII, text with escapes, and UTF-8 text.

#include <benchmark/benchmark.h>

#include <string>

#include "util/json_escape.hpp"

namespace {

const std::string kAscii = "/api/v1/query_range?query=sum(rate(http_requests_total[5m]))&start=1700000000&step=15";
const std::string kEscapes = "line one\n\"quoted\"\tand\\back\x01slash\r\nUser-Agent: curl/8.5.0\x7f";
const std::string kUtf8 = "Grüße aus Köln — 東京 🚀 ümlaut ñandú façade naïve café";

void run_escape(benchmark::State& state, const std::string& input) {
  std::string out;
  out.reserve(4 * input.size() + 2);
  for (auto _ : state) {
    out.clear();
    obsgw::util::append_json_string(out, input);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(input.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

void BM_JsonEscape_Ascii(benchmark::State& state) { run_escape(state, kAscii); }
void BM_JsonEscape_Escapes(benchmark::State& state) { run_escape(state, kEscapes); }
void BM_JsonEscape_Utf8(benchmark::State& state) { run_escape(state, kUtf8); }

}  // namespace

BENCHMARK(BM_JsonEscape_Ascii);
BENCHMARK(BM_JsonEscape_Escapes);
BENCHMARK(BM_JsonEscape_Utf8);
