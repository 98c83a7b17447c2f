#!/usr/bin/env bash
# The benchmark suite in one command: gatewayd next to nginx and HAProxy on this machine (see benchmarks/README.md).
#   benchmarks/suite.sh                 # full run (about 29 minutes); results in benchmarks/results/<date>-suite/
#   benchmarks/suite.sh --quick         # 1 rep x 2 s, to try it out
#   benchmarks/suite.sh --help          # every option (they go to benchmarks/suite.py)
# As root it installs what is missing from Debian. Unless GATEWAYD is set it builds Release gatewayd and the
# micro-benchmarks in build-release first.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tools=(wrk nginx-light haproxy redis-server gnuplot-nox g++ libssl-dev openssl)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "suite.sh: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "suite.sh: not installed: ${missing[*]} (run as root to install them; columns without their program are skipped)" >&2
  fi
fi

if [ -z "${GATEWAYD:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then scripts/install-deps.sh build; fi
  # The options are given every time: a build-release configured otherwise before must not drop the benchmarks.
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DOBSGW_BUILD_BENCHMARKS=ON >/dev/null
  ninja -C build-release -j2 gatewayd obsgw_micro_bench
fi

exec python3 benchmarks/suite.py "$@"
