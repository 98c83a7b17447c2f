#!/usr/bin/env bash
# Installs what obsgw needs from Debian's packages, only what is missing.
#   scripts/install-deps.sh build   - compiler, CMake and the libraries (enough for the demo)
#   scripts/install-deps.sh test    - plus clang/libFuzzer, Python, OpenSSL CLI, curl, nginx and Prometheus for the tests
set -euo pipefail

profile="${1:-test}"
build_pkgs=(cmake ninja-build g++ pkg-config libasio-dev libssl-dev libsimdjson-dev libfmt-dev libcli11-dev
            libgtest-dev libgmock-dev libbenchmark-dev python3 curl)
test_pkgs=(clang libclang-rt-14-dev openssl nginx-light prometheus procps)

pkgs=("${build_pkgs[@]}")
[ "$profile" = "test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends keeps Prometheus from pulling its web UI packages.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
