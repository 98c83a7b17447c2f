// Chunked transfer decoding of a 64 KB body, fed as one buffer (the decoder returns one data span per
// call, so the loop below is what a reader does with a full buffer). The decoder is zero-copy: data spans
// are views into the input, so the cost is per chunk (size lines, CRLFs, state changes), not per byte;
// the "chunks" rate is the figure to compare across chunk sizes.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "http/chunked_decoder.hpp"

namespace {

constexpr std::size_t kBodyBytes = 64 * 1024;

// `chunk` bytes per chunk, with a chunk extension on every 8th chunk and one trailer field.
std::string make_chunked_body(std::size_t chunk) {
  std::string out;
  std::size_t left = kBodyBytes, n = 0;
  while (left > 0) {
    std::size_t len = left < chunk ? left : chunk;
    char size_line[48];
    std::snprintf(size_line, sizeof size_line, (n++ % 8 == 7) ? "%zx;name=value\r\n" : "%zx\r\n", len);
    out += size_line;
    out.append(len, 'x');
    out += "\r\n";
    left -= len;
  }
  out += "0\r\nX-Checksum: abc\r\n\r\n";
  return out;
}

void BM_ChunkedDecode64K(benchmark::State& state) {
  const std::string wire = make_chunked_body(static_cast<std::size_t>(state.range(0)));
  obsgw::http::ChunkedDecoder decoder;
  std::size_t decoded = 0, spans = 0;
  for (auto _ : state) {
    decoder.reset();
    std::string_view in = wire;
    decoded = 0;
    spans = 0;
    while (true) {
      auto step = decoder.decode(in);
      if (step.error.status != 0) {
        state.SkipWithError("decode error");
        return;
      }
      decoded += step.data.size();
      spans += !step.data.empty();
      benchmark::DoNotOptimize(step.data.data());
      in.remove_prefix(step.consumed);
      if (step.done) break;
      if (step.consumed == 0) {
        state.SkipWithError("decoder made no progress");
        return;
      }
    }
  }
  if (decoded != kBodyBytes) state.SkipWithError("decoded size mismatch");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(wire.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.counters["chunks"] = benchmark::Counter(static_cast<double>(spans) * static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

}  // namespace

// Chunk sizes: tiny (many size lines), typical client (4 KB), and a single big chunk.
BENCHMARK(BM_ChunkedDecode64K)->ArgName("chunk")->Arg(256)->Arg(4096)->Arg(65536);
