#!/bin/bash
# gatewayd as one more column of an external benchmark harness that starts "the gateway" through a command and
# a few environment variables (the GATEWAY_CMD slot contract: GATEWAY_LISTEN, GATEWAY_BACKEND, GATEWAY_JWKS,
# GATEWAY_ISSUER, GATEWAY_AUDIENCE, GATEWAY_WORKERS, GATEWAY_RUN_DIR). It writes a configuration from them and
# execs gatewayd in the foreground, so the harness's PID is gatewayd's and SIGTERM stops it.
#
#   GATEWAY_CMD="$PWD/benchmarks/tools/slot_gateway.sh full" GATEWAY_NAME=gatewayd-full ./run.sh
#
# The one argument picks what gatewayd does per request, the same policies as benchmarks/suite.py's columns:
#   plain  proxy only (run it with GATEWAY_EXPECT_AUTH=0: it checks no token)
#   jwt    JWT (RS256 or ES256 from the JWKS, cached after the first verification) + tenant from the
#          `tenant` claim
#   full   jwt + per-IP and per-tenant rate limits in process (never refusing) + HMAC signing of what is
#          forwarded (the body hashed) + access log (on stdout, which the harness keeps in a file)
# OBSGW_GATEWAYD names the binary (default: build-release/apps/gatewayd/gatewayd of this checkout).
set -euo pipefail

variant=${1:-full}
here=$(cd "$(dirname "$0")/../.." && pwd)
gatewayd=${OBSGW_GATEWAYD:-$here/build-release/apps/gatewayd/gatewayd}
: "${GATEWAY_LISTEN:?the harness exports GATEWAY_LISTEN}" "${GATEWAY_BACKEND:?}" "${GATEWAY_RUN_DIR:?}"
[ -x "$gatewayd" ] || { echo "slot_gateway.sh: $gatewayd is not built (cmake --build build-release)" >&2; exit 1; }

dir="$GATEWAY_RUN_DIR/slot-gateway-$variant"
mkdir -p "$dir"
config="$dir/gatewayd.json"

jwt='{"type": "jwt", "providers": [{"issuer": "'"${GATEWAY_ISSUER:-}"'", "jwks_file": "'"${GATEWAY_JWKS:-}"'",
      "audiences": ["'"${GATEWAY_AUDIENCE:-}"'"]}]},
     {"type": "tenant", "claim": "tenant"}'
case "$variant" in
  plain) policies='' access_log=false ;;
  jwt) policies=$jwt access_log=false ;;
  full)
    head -c 32 /dev/urandom > "$dir/sign.key"
    policies="$jwt"',
     {"type": "rate_limit", "limits": [
        {"name": "per-ip", "key": "client_ip", "rate": 1e9, "per": "second"},
        {"name": "per-tenant", "key": "tenant", "rate": 1e9, "per": "second"}]},
     {"type": "sign", "key_id": "bench", "secret_file": "'"$dir/sign.key"'",
      "headers": ["x-scope-orgid", "content-type"]}'
    access_log=true ;;
  *) echo "slot_gateway.sh: unknown variant \"$variant\" (plain, jwt or full)" >&2; exit 2 ;;
esac

cat > "$config" <<EOF
{
  "server": {"listen": ["$GATEWAY_LISTEN"], "threads": ${GATEWAY_WORKERS:-1}, "max_connections": 20000,
             "timeouts": {"idle_ms": 300000}},
  "logging": {"level": "warn", "access_log": $access_log},
  "upstreams": {"backend": {"url": "$GATEWAY_BACKEND", "max_idle_connections": 1024}},
  "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "backend", "policies": [$policies]}]
}
EOF
"$gatewayd" --config "$config" --check >&2
exec "$gatewayd" --config "$config"
