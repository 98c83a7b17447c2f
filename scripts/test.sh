#!/usr/bin/env bash
# Runs every test of obsgw: installs what is missing, then
#   1. a normal build: unit tests and integration tests (ctest);
#   2. the same suite built with AddressSanitizer and UndefinedBehaviorSanitizer;
#   3. the libFuzzer targets (HTTP parsers; tokens and credentials) for FUZZ_SECONDS in all (default 60);
#   4. an outside project that finds the installed library with find_package(obsgw).
# Build trees go to build-test/ (override with BUILD_ROOT). Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
build_root="${BUILD_ROOT:-$root/build-test}"
fuzz_seconds="${FUZZ_SECONDS:-60}"
jobs="${JOBS:-$(nproc)}"

scripts/install-deps.sh test

passed=0  # test cases, summed over every ctest run and the other checks
failed=0
step() { echo; echo "=== $* ==="; }
record() { if [ "$1" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $2"; fi; }
# Runs ctest and adds its counts ("N% tests passed, F tests failed out of T") to the totals.
run_ctest() {
  local dir="$1"; shift
  local log rc=0
  log="$(mktemp)"
  (cd "$dir" && ctest --output-on-failure "$@") 2>&1 | tee "$log" || rc=1
  local line total bad
  line="$(grep -E 'tests failed out of [0-9]+' "$log" | tail -n 1 || true)"
  rm -f "$log"
  if [ -z "$line" ]; then record 1 "ctest $* ran nothing"; return 1; fi
  bad="$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")"
  total="$(sed -E 's/.* tests failed out of ([0-9]+).*/\1/' <<<"$line")"
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  return "$rc"
}

build_and_test() {  # name, extra cmake args...
  local name="$1"; shift
  local dir="$build_root/$name"
  step "$name: build"
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOBSGW_BUILD_BENCHMARKS=OFF "$@" >/dev/null
  ninja -C "$dir" -j "$jobs"
  step "$name: tests"
  run_ctest "$dir" -j "$jobs" -E '^integration\.' || true
  # Integration tests start servers and measure memory: one at a time.
  run_ctest "$dir" -j 1 -R '^integration\.' || true
}

build_and_test normal
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  build_and_test sanitize -DOBSGW_SANITIZE=ON

# Fuzzing time is shared: two thirds to the HTTP parsers, one third to tokens and credentials.
http_seconds=$((fuzz_seconds * 2 / 3))
token_seconds=$((fuzz_seconds - http_seconds))
step "fuzz: http_parser_fuzzer for ${http_seconds}s, token_fuzzer for ${token_seconds}s"
CXX=clang++ cmake -S "$root" -B "$build_root/fuzz" -G Ninja -DOBSGW_BUILD_FUZZERS=ON -DOBSGW_BUILD_TESTS=OFF \
  -DOBSGW_BUILD_APPS=OFF -DOBSGW_BUILD_EXAMPLES=OFF -DOBSGW_BUILD_BENCHMARKS=OFF >/dev/null
ninja -C "$build_root/fuzz" http_parser_fuzzer token_fuzzer
corpus="$build_root/fuzz/corpus"
mkdir -p "$corpus" "$corpus-token"
rc=0
"$build_root/fuzz/tests/fuzz/http_parser_fuzzer" -max_total_time="$http_seconds" -max_len=4096 \
  -dict="$root/tests/fuzz/http.dict" -artifact_prefix="$build_root/fuzz/" "$corpus" "$root/tests/fuzz/corpus/request" \
  2>"$build_root/fuzz/fuzz.log" || rc=$?
tail -n 3 "$build_root/fuzz/fuzz.log"
record "$rc" "fuzzing HTTP parsers (see $build_root/fuzz/fuzz.log)"
rc=0
"$build_root/fuzz/tests/fuzz/token_fuzzer" -max_total_time="$token_seconds" -max_len=4096 \
  -artifact_prefix="$build_root/fuzz/token-" "$corpus-token" "$root/tests/fuzz/corpus/token" \
  2>"$build_root/fuzz/token-fuzz.log" || rc=$?
tail -n 3 "$build_root/fuzz/token-fuzz.log"
record "$rc" "fuzzing tokens and credentials (see $build_root/fuzz/token-fuzz.log)"

step "package: find_package(obsgw) from an outside project"
rc=0
prefix="$build_root/install"
rm -rf "$prefix"
cmake --install "$build_root/normal" --prefix "$prefix" >/dev/null &&
  cmake -S "$root/examples/find_package_consumer" -B "$build_root/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
  ninja -C "$build_root/consumer" >/dev/null &&
  "$build_root/consumer/consumer" || rc=1
record "$rc" "find_package consumer"

echo
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
