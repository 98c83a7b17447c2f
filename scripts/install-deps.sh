#!/usr/bin/env bash
# Installs what obsgw needs from Debian's packages, only what is missing.
#   scripts/install-deps.sh build   - compiler, CMake and the libraries (enough for the demo)
#   scripts/install-deps.sh test    - plus clang/libFuzzer, Python (with PyYAML, to read the Envoy and Traefik examples),
#                                     OpenSSL CLI, curl, nginx, Prometheus and Redis for the tests,
#                                     Chromium (the browser sign-in test), and `npm ci` of the OpenID Provider
#                                     fixture and of playwright-core (needs Node.js >= 20.19 already there)
set -euo pipefail

profile="${1:-test}"
build_pkgs=(cmake ninja-build g++ pkg-config libasio-dev libssl-dev libsimdjson-dev libfmt-dev libcli11-dev
            libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev libgoogle-perftools-dev python3 curl)
test_pkgs=(clang libclang-rt-14-dev openssl nginx-light prometheus procps redis-server python3-yaml chromium)

pkgs=("${build_pkgs[@]}")
[ "$profile" = "test" ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
elif [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends keeps Prometheus from pulling its web UI packages.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ "$profile" = "test" ] || exit 0
# The integration tests' OpenID Provider is npm oidc-provider 9, which needs Node.js >= 20.19. Debian 12's own
# nodejs is 18, so Node is not installed from apt: it has to come with the machine (or CI's setup step).
node_version="$(node --version 2>/dev/null || true)"
IFS=. read -r node_major node_minor _ <<<"${node_version#v}"
if ! [[ "$node_major" =~ ^[0-9]+$ && "$node_minor" =~ ^[0-9]+$ ]] ||
   (( node_major < 20 || (node_major == 20 && node_minor < 19) )); then
  echo "install-deps: Node.js >= 20.19 is needed for tests/integration/oidc, found '${node_version:-no node}'" \
       "(Debian's nodejs 18 is too old; install Node.js 20.19+ or 22 LTS)" >&2
  exit 1
fi
integration_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/integration"
# oidc/: the OpenID Provider (oidc-provider); browser/: playwright-core, which drives Debian's Chromium (it
# downloads no browser of its own).
for fixture in oidc:oidc-provider browser:playwright-core; do
  dir="$integration_dir/${fixture%%:*}" package="${fixture#*:}"
  if [ -d "$dir/node_modules/$package" ]; then
    echo "install-deps: $package present (node $node_version)"
  else
    echo "install-deps: npm ci in tests/integration/${fixture%%:*} (node $node_version)"
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
done
