#!/usr/bin/env bash
# The demo of the main job: gatewayd in front of a local sample upstream.
# Installs what is missing, builds gatewayd (Release), starts the sample upstream on :9000 and gatewayd on :8080
# (admin on :9901), shows a forwarded request and rejected ones, then keeps running for you to try the
# printed curl lines (Ctrl-C stops both). Non-interactive runs (no terminal) stop after the showcase.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

scripts/install-deps.sh build
cmake -S "$root" -B "$root/build-release" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DOBSGW_BUILD_TESTS=OFF -DOBSGW_BUILD_EXAMPLES=OFF -DOBSGW_BUILD_BENCHMARKS=OFF >/dev/null
ninja -C "$root/build-release" gatewayd

log_dir="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: stopped (logs were in $log_dir)"
}
trap cleanup EXIT INT TERM

python3 "$root/examples/demo/sample_upstream.py" 9000 &
pids+=($!)
"$root/build-release/apps/gatewayd/gatewayd" --config "$root/examples/demo/gatewayd.json" >"$log_dir/gatewayd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  curl -fs http://127.0.0.1:9901/ready >/dev/null 2>&1 && break
  sleep 0.1
done

show() { echo; echo "\$ $*"; eval "$@"; echo; }
echo "=== gatewayd :8080 -> sample upstream :9000 (admin :9901) ==="
show "curl -s -i http://127.0.0.1:8080/api/v1/query?query=up -H 'X-Internal-Debug: leak'"
show "curl -s -i -X POST --data-binary '{\"streams\":[]}' -H 'Content-Type: application/json' http://127.0.0.1:8080/api/v1/push"
echo "--- rejected: no route ---"
show "curl -s -i http://127.0.0.1:8080/nothing-here"
echo "--- rejected: request smuggling shape (Content-Length with Transfer-Encoding) ---"
show "curl -s -i -X POST -H 'Transfer-Encoding: chunked' -H 'Content-Length: 3' --data-binary abc http://127.0.0.1:8080/api/v1/push"
echo "--- rejected: a path that climbs above the root ---"
show "curl -s -i --path-as-is http://127.0.0.1:8080/api/../../etc/passwd"
echo "--- rejected: the push route takes POST only ---"
show "curl -s -i http://127.0.0.1:8080/api/v1/push"
echo "--- admin ---"
show "curl -s http://127.0.0.1:9901/stats"
echo "--- access log (JSON lines) ---"
grep '"type":"access"' "$log_dir/gatewayd.log" | tail -n 5

if [ -t 0 ]; then
  echo
  echo "Still running. Try:"
  echo "  curl -i http://127.0.0.1:8080/api/anything"
  echo "  curl -i -X POST -H 'Content-Length: 99999999999' http://127.0.0.1:8080/api/v1/push   # 413"
  echo "  curl -s http://127.0.0.1:9901/metrics | head"
  echo "Ctrl-C to stop."
  wait
fi
