#!/usr/bin/env bash
# proxy_bench.sh: end-to-end reverse-proxy benchmark of gatewayd against nginx, on loopback only.
#
# What it measures, in one run and with one core layout:
#   direct    wrk -> backend. The server under test (DUT) is a second, identical backend instance.
#   gatewayd  wrk -> gatewayd (1 io thread, one route "/" to the backend, access log off) -> backend
#   nginx     wrk -> nginx proxy_pass (1 worker, upstream keep-alive pool, HTTP/1.1) -> backend
# The backend is nginx (1 worker, keep-alive) answering GET with 200 and a small JSON body, POST with 204.
# Each column is measured with GET and with POST of a BODY_BYTES (10 KB) body.
#
# Layout: the DUT runs alone on CPU DUT_CPU (0) under taskset; wrk and the backend share CPU LOAD_CPU (1).
# Reported per column: req/s, p50 and p99 latency (wrk --latency), the DUT's CPU time per request
# (utime+stime of its process tree from /proc/PID/stat, before/after, divided by the requests), the DUT
# core's busy share, the CPU other processes took meanwhile (noise indicator), and the ratios
# gatewayd/nginx. Columns run interleaved (rep 1 of every column, then rep 2, ...) and the medians of
# the reps are reported. The goal, printed as PASS/MISS per method: gatewayd req/s >= 1.0 x nginx and
# gatewayd p99 <= 1.2 x nginx.
#
# The load is closed-loop (CONNS connections kept busy), so the latencies are those at saturation.
#
# With JWT=1, three more columns (GET only), each its own gatewayd (1 io thread, pinned like the others) whose
# one route has a `jwt` policy: issuer https://idp.example, a local JWK Set file, audience urn:obsgw, token_type
# at+jwt, default cache (10000 entries). Tokens are RFC 9068-shaped access tokens of about 700 bytes (RS256), the
# same claims as benchmarks/micro/jwt_bench.cpp, signed by a small C++/OpenSSL generator compiled in the temporary
# directory (JWT_TOKENS per algorithm, in parallel on every core, before anything is measured).
#   gatewayd-jwt-cached     every request carries the same valid RS256 token (RSA-2048): the cache-hit path
#   gatewayd-jwt-new-RS256  every request carries a different valid RS256 token: a signature check per request
#   gatewayd-jwt-new-ES256  the same with ES256 (P-256)
# For the "new" columns wrk cycles through the token file (one token per request, each wrk thread in its own
# slice of the file), and gatewayd is restarted before each measurement, so no token is ever seen twice by one
# gatewayd process as long as a wrk thread does not run past its slice (the report counts such wraps; raise
# JWT_TOKENS or shorten DURATION if any). /metrics of each JWT gatewayd is read around every measurement (outside
# the CPU-time window): signature verifications and token-cache hits per request prove which path was measured.
# The script also runs `openssl speed -seconds 3 rsa2048 ecdsap256` pinned to DUT_CPU in the same run and reports
# the verification cost per request (DUT CPU µs/req of jwt-new minus that of gatewayd) next to openssl's time per
# verify, and the same difference in user-space time alone (utime), which leaves out kernel work.
# Goals (PASS/MISS): jwt-cached req/s >= 0.95 x gatewayd; verification efficiency (openssl µs per verify /
# gatewayd's verification cost per request) >= 0.80 ("approaching openssl"). With JWT=1 the report is
# <date>-jwt.md instead of <date>-proxy.md; the plain columns are measured exactly as without it.
#
# With TRAFFIC=1, three more columns (GET and POST), each its own gatewayd (1 io thread, pinned like the others,
# an admin listener for /metrics) whose one route has traffic policies:
#   gatewayd-limits        rate_limit, in process: per-IP ("bench-ip", key client_ip) and per-tenant
#                          ("bench-tenant", key header X-Scope-OrgID), 1e9/second each: limits that never refuse,
#                          so what is measured is the cost of deciding (and of the RateLimit-* response headers)
#   gatewayd-limits-redis  the same limits with "store": "redis" against a redis-server started here (pinned to
#                          LOAD_CPU like the backend; --save '' --appendonly no), redis.timeout_ms 50
#   gatewayd-sign          sign: HMAC-SHA256 (key id "bench", a 64-byte secret file) over x-scope-orgid and
#                          content-type plus the body's SHA-256 (the body is read whole before forwarding)
# The per-tenant limit is keyed by the X-Scope-OrgID header because the benchmark has no authentication. In
# TRAFFIC=1 mode wrk sends X-Scope-OrgID on every request of every column (plain ones too, so all columns carry
# the same bytes), cycling through TRAFFIC_TENANTS tenants ("tenant-0" ..) request by request (requests are
# formatted once per wrk thread, in init()). /metrics of each traffic gatewayd is read around every measurement
# (outside the CPU-time window): rate-limit refusals (must stay 0), and for the Redis column the store's round
# trips (obsgw_rate_limit_store_duration_seconds_count, about one per request: proof the decisions went to Redis)
# and store errors (must stay 0); the redis-server's own CPU time per request is reported beside it. Before
# measuring, the sign column's signature is checked end to end: a backend location echoes what it received, and
# the HMAC is recomputed here with openssl. Goals (PASS/MISS, GET and POST): limits req/s >= 0.95 x gatewayd;
# limits-redis req/s >= 0.5 x limits; sign POST req/s >= 0.90 x gatewayd (GET for information); the sign
# column's added DUT CPU per POST (sign - gatewayd) is reported against the later goal of <= 8 µs. With TRAFFIC=1
# the report is <date>-traffic.md (<date>-jwt-traffic.md with JWT=1 as well).
#
# Run:
#   benchmarks/proxy_bench.sh                       # builds Release gatewayd in build-release first
#   GATEWAYD=build/apps/gatewayd/gatewayd REPS=5 DURATION=5s benchmarks/proxy_bench.sh
#   JWT=1 REPS=5 DURATION=5s benchmarks/proxy_bench.sh   # + JWT columns, report <date>-jwt.md
#   TRAFFIC=1 REPS=5 DURATION=5s benchmarks/proxy_bench.sh   # + rate limit / Redis / signing columns, <date>-traffic.md
#
# Settings (environment):
#   GATEWAYD      gatewayd binary to test; unset: build it (Release) in $REPO/build-release with ninja -j1
#   REPS          repetitions, default 3              DURATION   wrk -d per measurement, default 5s
#   WARMUP        discarded first run per column and method, default 1s (doubles as a sanity check)
#   CONNS         wrk -c, default 50                  WRK_THREADS  wrk -t, default 2
#   BODY_BYTES    POST body size, default 10240       ACCESS_LOG  1: gatewayd writes its access log
#   DUT_CPU       CPU of the server under test, 0     LOAD_CPU    CPU of wrk and the backend, 1
#   BASE_PORT     first of 6 (JWT=1: 12, TRAFFIC=1: 19) ports, 19180  RESULTS_DIR default $REPO/benchmarks/results
#   UNPINNED      1: add two columns without taskset for gatewayd and wrk (the backend stays on LOAD_CPU):
#                 "gatewayd-unpinned" (1 io thread) and "gatewayd-2t" (2 io threads). Default 0.
#   JWT           1: add the three JWT columns above (ports BASE_PORT+6 .. BASE_PORT+11). Default 0.
#   JWT_TOKENS    tokens generated per algorithm for the "new" columns, default 300000; each wrk thread gets
#                 JWT_TOKENS/WRK_THREADS, which must exceed its requests in one measurement (about 50k at 20k req/s
#                 for 5 s with 2 threads)
#   JWT_TOKEN_TTL_S  lifetime (exp - now) of the generated tokens, default 604800 (7 days)
#   TRAFFIC       1: add the three traffic columns above (ports BASE_PORT+12 .. BASE_PORT+18: gatewayd-limits +12,
#                 gatewayd-limits-redis +13, gatewayd-sign +14, redis-server +15, their admin listeners +16 .. +18).
#                 Default 0.
#   TRAFFIC_TENANTS  distinct X-Scope-OrgID values wrk cycles through with TRAFFIC=1, default 20
#   REDIS_SERVER  redis-server binary for TRAFFIC=1, default the one on PATH (Debian: /usr/bin/redis-server)
#
# Needs wrk and nginx (Debian: wrk, nginx-light; installed with apt-get when missing and run as root),
# curl, taskset, pgrep; with JWT=1 also g++, the OpenSSL headers (libssl-dev) and the openssl command; with
# TRAFFIC=1 redis-server (Debian: redis-server, installed with apt-get when missing and run as root), openssl and
# sha256sum.
# Everything lives in a temporary directory that is removed at exit, and every
# process started here is stopped by its PID.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
readonly SCRIPT_DIR REPO

REPS=${REPS:-3}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNS=${CONNS:-50}
WRK_THREADS=${WRK_THREADS:-2}
BODY_BYTES=${BODY_BYTES:-10240}
ACCESS_LOG=${ACCESS_LOG:-0}
DUT_CPU=${DUT_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BASE_PORT=${BASE_PORT:-19180}
RESULTS_DIR=${RESULTS_DIR:-$REPO/benchmarks/results}
UNPINNED=${UNPINNED:-0}
JWT=${JWT:-0}
JWT_TOKENS=${JWT_TOKENS:-300000}
JWT_TOKEN_TTL_S=${JWT_TOKEN_TTL_S:-604800}
TRAFFIC=${TRAFFIC:-0}
TRAFFIC_TENANTS=${TRAFFIC_TENANTS:-20}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}

readonly BACKEND_PORT=$BASE_PORT
readonly DIRECT_PORT=$((BASE_PORT + 1))
readonly GATEWAY_PORT=$((BASE_PORT + 2))
readonly NGINX_PORT=$((BASE_PORT + 3))
readonly GATEWAY_UNPINNED_PORT=$((BASE_PORT + 4))
readonly GATEWAY_2T_PORT=$((BASE_PORT + 5))
readonly JWT_CACHED_PORT=$((BASE_PORT + 6))
readonly JWT_NEW_RS256_PORT=$((BASE_PORT + 7))
readonly JWT_NEW_ES256_PORT=$((BASE_PORT + 8))
readonly JWT_ADMIN_BASE_PORT=$((BASE_PORT + 9))   # admin (/metrics) of the three JWT gatewayds: +9, +10, +11
readonly JWT_ISSUER=https://idp.example
readonly JWT_AUDIENCE=urn:obsgw
readonly LIMITS_PORT=$((BASE_PORT + 12))
readonly LIMITS_REDIS_PORT=$((BASE_PORT + 13))
readonly SIGN_PORT=$((BASE_PORT + 14))
readonly REDIS_PORT=$((BASE_PORT + 15))
readonly TRAFFIC_ADMIN_BASE_PORT=$((BASE_PORT + 16))  # admin (/metrics) of the three traffic gatewayds: +16 .. +18
readonly SIGN_KEY_ID=bench
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK

WORK=""                      # temporary directory, removed at exit
declare -A SERVER_PID=()     # name -> PID of every server started here
declare -A COLUMN_PORT=()    # column -> port wrk targets
declare -A COLUMN_DUT=()     # column -> server name whose CPU time is measured
declare -A COLUMN_PINNED=()  # column -> 1 when DUT/wrk are pinned
declare -A COLUMN_METHODS=() # column -> methods measured ("GET POST", JWT columns "GET")
declare -A COLUMN_TOKEN=()   # column -> the one token every request carries (jwt-cached)
declare -A COLUMN_TOKEN_FILE=()  # column -> file of tokens, one per request (jwt-new-*)
declare -A COLUMN_ADMIN=()   # column -> admin port whose /metrics counts verifications and cache hits
declare -A COLUMN_RESTART=() # column -> 1: restart its gatewayd before each measurement (empty token cache)
declare -A COLUMN_TRAFFIC_ADMIN=()  # column -> admin port whose /metrics counts limiter refusals and store trips
declare -a HELPER_PIDS=()    # token generators running in the background
COLUMNS=()
VERDICTS=()                  # "METHOD: gatewayd/nginx ..." lines, printed at the end
OVERALL=MISS
JWT_LINES=()                 # JWT verdict lines of the report
JWT_OVERALL=MISS
TRAFFIC_OVERALL=MISS

log() { printf '[proxy_bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------
# Setup and teardown

cleanup() {
  local name
  for name in "${!SERVER_PID[@]}"; do stop_server "$name"; done
  for name in "${HELPER_PIDS[@]}"; do kill -TERM "$name" 2>/dev/null || true; wait "$name" 2>/dev/null || true; done
  [ -n "$WORK" ] && rm -rf "$WORK"
  return 0
}

install_tools_if_missing() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
  if [ "$TRAFFIC" = 1 ] && [ ! -x "$REDIS_SERVER" ]; then missing+=(redis-server); REDIS_SERVER=/usr/bin/redis-server; fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
  fi
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

require_tools() {
  local t
  for t in wrk curl taskset pgrep getconf; do command -v "$t" >/dev/null || die "$t not found"; done
  if [ "$JWT" = 1 ]; then
    for t in g++ openssl; do command -v "$t" >/dev/null || die "$t not found (needed with JWT=1)"; done
  fi
  if [ "$TRAFFIC" = 1 ]; then
    for t in openssl sha256sum; do command -v "$t" >/dev/null || die "$t not found (needed with TRAFFIC=1)"; done
    [ -x "$REDIS_SERVER" ] || die "redis-server not found (REDIS_SERVER=$REDIS_SERVER; needed with TRAFFIC=1)"
    [ "$TRAFFIC_TENANTS" -ge 1 ] 2>/dev/null || die "TRAFFIC_TENANTS must be a positive number"
  fi
  NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
  [ -x "$NGINX_BIN" ] || die "nginx not found"
}

build_gatewayd_if_needed() {
  if [ -n "${GATEWAYD:-}" ]; then
    [ -x "$GATEWAYD" ] || die "GATEWAYD=$GATEWAYD is not an executable"
    return 0
  fi
  local build_dir=$REPO/build-release
  log "building Release gatewayd in $build_dir (ninja -j1)"
  if [ ! -f "$build_dir/build.ninja" ]; then
    cmake -S "$REPO" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DOBSGW_BUILD_TESTS=OFF -DOBSGW_BUILD_EXAMPLES=OFF -DOBSGW_BUILD_BENCHMARKS=OFF >"$WORK/cmake.log" 2>&1 \
      || { cat "$WORK/cmake.log" >&2; die "cmake configure failed"; }
  fi
  ninja -C "$build_dir" -j1 gatewayd >"$WORK/ninja.log" 2>&1 || { tail -50 "$WORK/ninja.log" >&2; die "build failed"; }
  GATEWAYD=$build_dir/apps/gatewayd/gatewayd
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check_ports_free() {
  local p
  local ports=("$BACKEND_PORT" "$DIRECT_PORT" "$GATEWAY_PORT" "$NGINX_PORT" "$GATEWAY_UNPINNED_PORT" "$GATEWAY_2T_PORT")
  [ "$JWT" = 1 ] && ports+=("$JWT_CACHED_PORT" "$JWT_NEW_RS256_PORT" "$JWT_NEW_ES256_PORT" "$JWT_ADMIN_BASE_PORT"
    "$((JWT_ADMIN_BASE_PORT + 1))" "$((JWT_ADMIN_BASE_PORT + 2))")
  [ "$TRAFFIC" = 1 ] && ports+=("$LIMITS_PORT" "$LIMITS_REDIS_PORT" "$SIGN_PORT" "$REDIS_PORT" "$TRAFFIC_ADMIN_BASE_PORT"
    "$((TRAFFIC_ADMIN_BASE_PORT + 1))" "$((TRAFFIC_ADMIN_BASE_PORT + 2))")
  for p in "${ports[@]}"; do
    port_in_use "$p" && die "port $p is in use; set BASE_PORT"
  done
  return 0
}

# ---------------------------------------------------------------------------------------------------
# Servers: started in the foreground mode of each program, in the background of this shell, by PID.

# start_server NAME CPU_OR_EMPTY cmd...: the PID recorded is the program's own (taskset execs it).
start_server() {
  local name=$1 cpu=$2
  shift 2
  if [ -n "$cpu" ]; then
    taskset -c "$cpu" "$@" >"$WORK/logs/$name.log" 2>&1 &
  else
    "$@" >"$WORK/logs/$name.log" 2>&1 &
  fi
  SERVER_PID[$name]=$!
  log "started $name pid=${SERVER_PID[$name]} cpu=${cpu:-any}"
}

# stop_server NAME: SIGTERM, wait up to 10 s, then SIGKILL; only the recorded PID is signalled.
stop_server() {
  local name=$1 pid=${SERVER_PID[$1]:-} _
  [ -n "$pid" ] || return 0
  unset "SERVER_PID[$name]"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name pid=$pid still running after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

wait_listening() {
  local name=$1 port=$2 _
  for _ in $(seq 1 100); do
    port_in_use "$port" && return 0
    kill -0 "${SERVER_PID[$name]}" 2>/dev/null || { cat "$WORK/logs/$name.log" >&2; die "$name exited at start"; }
    sleep 0.1
  done
  die "$name is not listening on 127.0.0.1:$port after 10 s"
}

# nginx_http_common NAME: http{} settings shared by every nginx here; all writable paths in $WORK.
nginx_http_common() {
  local dir=$WORK/nginx/$1
  cat <<EOF
    access_log off;
    server_tokens off;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_max_body_size 1m;
    client_body_buffer_size 64k;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
EOF
}

write_nginx_config() {  # NAME PORT SERVER_BLOCK_BODY [HTTP_EXTRA]
  local name=$1 port=$2 body=$3 extra=${4:-} dir=$WORK/nginx/$1
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
$(nginx_http_common "$name")
$extra
    server {
        listen 127.0.0.1:$port backlog=4096;
$body
    }
}
EOF
}

# start_backend NAME PORT CPU: the fast backend (200 + small JSON for GET, 204 for POST). With TRAFFIC=1 it also
# has /bench/signature (never measured), which echoes the signature headers it received (check_sign_answers).
start_backend() {
  local name=$1 port=$2 cpu=$3 echo_location=""
  # shellcheck disable=SC2016  # $http_* and $request_* are nginx's, not the shell's
  [ "$TRAFFIC" = 1 ] && echo_location='
        location = /bench/signature {
            default_type text/plain;
            return 200 "$http_x_gateway_timestamp\n$http_x_gateway_key_id\n$request_method\n$request_uri\n$http_x_gateway_signed_headers\nx-scope-orgid:$http_x_scope_orgid\ncontent-type:$http_content_type\n$http_x_gateway_content_sha256\n$http_x_gateway_signature\n";
        }'
  # shellcheck disable=SC2016  # $request_method is nginx's, not the shell's
  write_nginx_config "$name" "$port" '
        location / {
            if ($request_method = POST) { return 204; }
            default_type application/json;
            return 200 '"'"'{"status":"success","data":{"resultType":"vector","result":[]}}'"'"';
        }'"$echo_location"
  start_server "$name" "$cpu" "$NGINX_BIN" -p "$WORK/nginx/$name" -c "$WORK/nginx/$name/nginx.conf" \
    -e "$WORK/nginx/$name/error.log"
  wait_listening "$name" "$port"
}

start_nginx_proxy() {  # NAME PORT CPU
  local name=$1 port=$2 cpu=$3
  write_nginx_config "$name" "$port" '
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }' "    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; keepalive_requests 1000000; }"
  start_server "$name" "$cpu" "$NGINX_BIN" -p "$WORK/nginx/$name" -c "$WORK/nginx/$name/nginx.conf" \
    -e "$WORK/nginx/$name/error.log"
  wait_listening "$name" "$port"
}

# start_gatewayd NAME PORT CPU_OR_EMPTY THREADS [POLICIES_JSON ADMIN_PORT TOP_JSON]: POLICIES_JSON is the route's
# "policies" array (JWT and traffic columns), ADMIN_PORT the admin listener serving /metrics, TOP_JSON more
# top-level members (the "redis" section).
start_gatewayd() {
  local name=$1 port=$2 cpu=$3 threads=$4 policies=${5:-} admin=${6:-} top=${7:-} access_log=false conf=$WORK/$1.json
  local route_extra="" server_extra="" top_extra=""
  [ "$ACCESS_LOG" = 1 ] && access_log=true
  [ -n "$policies" ] && route_extra=", \"policies\": $policies"
  [ -n "$admin" ] && server_extra=", \"admin_listen\": \"127.0.0.1:$admin\""
  [ -n "$top" ] && top_extra="
  $top,"
  cat >"$conf" <<EOF
{
  "server": {"listen": ["127.0.0.1:$port"], "threads": $threads, "drain_timeout_ms": 2000$server_extra},$top_extra
  "logging": {"level": "warn", "access_log": $access_log},
  "upstreams": {"backend": {"url": "http://127.0.0.1:$BACKEND_PORT"}},
  "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "backend"$route_extra}]
}
EOF
  "$GATEWAYD" --config "$conf" --check >/dev/null || die "gatewayd rejects $conf"
  start_server "$name" "$cpu" "$GATEWAYD" --config "$conf"
  wait_listening "$name" "$port"
}

# restart_gatewayd COLUMN: stop the column's gatewayd (by PID) and start it again with the same config and
# pinning: a fresh process with an empty token cache.
restart_gatewayd() {
  local column=$1 name=${COLUMN_DUT[$1]} cpu=""
  [ "${COLUMN_PINNED[$column]}" = 1 ] && cpu=$DUT_CPU
  stop_server "$name"
  start_server "$name" "$cpu" "$GATEWAYD" --config "$WORK/$name.json"
  wait_listening "$name" "${COLUMN_PORT[$column]}"
}

# add_column COLUMN SERVER PORT PINNED [METHODS]
add_column() {
  COLUMNS+=("$1")
  COLUMN_DUT[$1]=$2
  COLUMN_PORT[$1]=$3
  COLUMN_PINNED[$1]=$4
  COLUMN_METHODS[$1]=${5:-GET POST}
}

column_has_method() { [[ " ${COLUMN_METHODS[$1]} " == *" $2 "* ]]; }

# ---------------------------------------------------------------------------------------------------
# JWT: keys, a JWK Set per key, and tokens (JWT=1)

# The generator: "jwks KEY.pem KID ALG" prints a JWK Set with the key's public half; "sign KEY.pem ALG KID ISSUER
# AUDIENCE FIRST COUNT EXP" prints COUNT tokens (serials FIRST..), one per line, claims shaped like
# benchmarks/micro/jwt_bench.cpp (RFC 9068 access token, about 700 bytes with RS256).
write_token_generator() {
  cat >"$WORK/jwtgen.cpp" <<'EOF'
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

static void fail(const char* what) {
  std::fprintf(stderr, "jwtgen: %s\n", what);
  std::exit(1);
}

static std::string b64url(const unsigned char* p, std::size_t n) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string o;
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    std::uint32_t v = std::uint32_t(p[i]) << 16 | std::uint32_t(p[i + 1]) << 8 | p[i + 2];
    o += a[v >> 18 & 63]; o += a[v >> 12 & 63]; o += a[v >> 6 & 63]; o += a[v & 63];
  }
  if (n - i == 1) {
    std::uint32_t v = std::uint32_t(p[i]) << 16;
    o += a[v >> 18 & 63]; o += a[v >> 12 & 63];
  } else if (n - i == 2) {
    std::uint32_t v = std::uint32_t(p[i]) << 16 | std::uint32_t(p[i + 1]) << 8;
    o += a[v >> 18 & 63]; o += a[v >> 12 & 63]; o += a[v >> 6 & 63];
  }
  return o;
}
static std::string b64url(const std::string& s) { return b64url(reinterpret_cast<const unsigned char*>(s.data()), s.size()); }

static std::string bn_b64(EVP_PKEY* k, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(k, name, &bn) != 1) fail("key parameter missing");
  std::string raw(static_cast<std::size_t>(pad ? pad : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(&raw[0]), static_cast<int>(raw.size()));
  BN_free(bn);
  return b64url(raw);
}

int main(int argc, char** argv) {
  if (argc < 5) fail("usage: jwtgen jwks KEY KID ALG | jwtgen sign KEY ALG KID ISSUER AUDIENCE FIRST COUNT EXP");
  FILE* f = std::fopen(argv[2], "r");
  if (!f) fail("cannot open the key");
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!key) fail("cannot read the key");
  const bool ec = EVP_PKEY_is_a(key, "EC");
  if (std::strcmp(argv[1], "jwks") == 0) {
    if (ec)
      std::printf("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"alg\":\"%s\",\"use\":\"sig\","
                  "\"x\":\"%s\",\"y\":\"%s\"}]}\n", argv[3], argv[4], bn_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, 32).c_str(),
                  bn_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32).c_str());
    else
      std::printf("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"%s\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}]}\n",
                  argv[3], argv[4], bn_b64(key, OSSL_PKEY_PARAM_RSA_N, 0).c_str(), bn_b64(key, OSSL_PKEY_PARAM_RSA_E, 0).c_str());
    return 0;
  }
  if (argc != 10 || std::strcmp(argv[1], "sign") != 0) fail("usage: jwtgen sign KEY ALG KID ISSUER AUDIENCE FIRST COUNT EXP");
  const char *alg = argv[3], *kid = argv[4], *iss = argv[5], *aud = argv[6];
  const long long first = std::atoll(argv[7]), count = std::atoll(argv[8]), exp = std::atoll(argv[9]);
  const long long iat = static_cast<long long>(std::time(nullptr)) - 1;
  char buf[1024];
  std::snprintf(buf, sizeof buf, "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", alg, kid);
  const std::string header = b64url(buf);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string sig(512, '\0');
  for (long long serial = first; serial < first + count; ++serial) {
    std::snprintf(buf, sizeof buf,
                  "{\"iss\":\"%s\",\"sub\":\"agent-%lld\",\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"jti\":\"%016llx\","
                  "\"client_id\":\"agent-%lld\",\"scope\":\"logs:write metrics:write traces:write\",\"tenant_id\":\"tenant-%lld\"}",
                  iss, serial, aud, exp, iat, static_cast<unsigned long long>(serial) * 7919ULL, serial, serial % 16);
    const std::string input = header + "." + b64url(buf);
    std::size_t len = sig.size();
    if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(&sig[0]), &len, reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) != 1)
      fail("signing failed");
    std::string out;
    if (ec) {  // DER -> the JWS form, R || S of 32 bytes each
      const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
      ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
      if (!es) fail("bad ECDSA signature");
      unsigned char raw[64];
      BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
      ECDSA_SIG_free(es);
      out = b64url(raw, 64);
    } else {
      out = b64url(reinterpret_cast<const unsigned char*>(sig.data()), len);
    }
    std::fputs(input.c_str(), stdout);
    std::fputc('.', stdout);
    std::fputs(out.c_str(), stdout);
    std::fputc('\n', stdout);
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
EOF
  g++ -O2 -std=c++17 -o "$WORK/jwtgen" "$WORK/jwtgen.cpp" -lcrypto >"$WORK/jwtgen.log" 2>&1 \
    || { cat "$WORK/jwtgen.log" >&2; die "cannot compile the token generator (g++ and libssl-dev needed)"; }
}

# generate_tokens KEY ALG OUT FIRST COUNT: COUNT tokens into OUT, made by one generator per core in parallel.
generate_tokens() {
  local key=$1 alg=$2 out=$3 first=$4 count=$5 jobs i from n pids=() pid
  jobs=$(nproc)
  [ "$count" -lt 1000 ] && jobs=1
  for i in $(seq 0 $((jobs - 1))); do
    from=$((first + count * i / jobs))
    n=$((first + count * (i + 1) / jobs - from))
    "$WORK/jwtgen" sign "$key" "$alg" k1 "$JWT_ISSUER" "$JWT_AUDIENCE" "$from" "$n" "$JWT_EXP" >"$out.part$i" &
    pids+=("$!")
    HELPER_PIDS+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "the token generator failed"; done
  HELPER_PIDS=()
  for i in $(seq 0 $((jobs - 1))); do cat "$out.part$i"; rm -f "$out.part$i"; done >"$out"
  [ "$(wc -l <"$out")" -eq "$count" ] || die "$out: expected $count tokens"
  # One slice per wrk thread, OUT.0 .. OUT.(WRK_THREADS-1), whole lines (what bench.lua reads).
  for i in $(seq 0 $((WRK_THREADS - 1))); do
    from=$((count * i / WRK_THREADS + 1))
    n=$((count * (i + 1) / WRK_THREADS))   # the slice's last line
    sed -n "${from},${n}p;${n}q" "$out" >"$out.$i"
  done
}

# prepare_jwt: keys (RSA-2048, P-256), a JWK Set file each, JWT_TOKENS tokens per algorithm, the cached token.
prepare_jwt() {
  local started=$SECONDS
  [ "$JWT_TOKENS" -ge 1000 ] || die "JWT_TOKENS must be at least 1000"
  JWT_EXP=$(($(date +%s) + JWT_TOKEN_TTL_S))
  mkdir -p "$WORK/jwt"
  write_token_generator
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/jwt/rsa.pem" 2>/dev/null \
    || die "openssl genpkey RSA failed"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/jwt/ec.pem" 2>/dev/null \
    || die "openssl genpkey EC failed"
  "$WORK/jwtgen" jwks "$WORK/jwt/rsa.pem" k1 RS256 >"$WORK/jwt/rs256.jwks.json"
  "$WORK/jwtgen" jwks "$WORK/jwt/ec.pem" k1 ES256 >"$WORK/jwt/es256.jwks.json"
  log "generating $JWT_TOKENS RS256 and $JWT_TOKENS ES256 tokens ($(nproc) generators in parallel)"
  generate_tokens "$WORK/jwt/rsa.pem" RS256 "$WORK/jwt/rs256.tokens" 0 "$JWT_TOKENS"
  generate_tokens "$WORK/jwt/ec.pem" ES256 "$WORK/jwt/es256.tokens" 0 "$JWT_TOKENS"
  # The cached column's token: one more serial, never in the token files.
  JWT_CACHED_TOKEN=$("$WORK/jwtgen" sign "$WORK/jwt/rsa.pem" RS256 k1 "$JWT_ISSUER" "$JWT_AUDIENCE" "$JWT_TOKENS" 1 "$JWT_EXP")
  JWT_GEN_SECONDS=$((SECONDS - started))
  JWT_TOKEN_BYTES_RS256=$(head -1 "$WORK/jwt/rs256.tokens" | tr -d '\n' | wc -c)
  JWT_TOKEN_BYTES_ES256=$(head -1 "$WORK/jwt/es256.tokens" | tr -d '\n' | wc -c)
  log "tokens ready in ${JWT_GEN_SECONDS}s (RS256 $JWT_TOKEN_BYTES_RS256 bytes, ES256 $JWT_TOKEN_BYTES_ES256 bytes each)"
}

jwt_policy() {  # JWKS_FILE: the route's policies array
  printf '[{"type": "jwt", "providers": [{"issuer": "%s", "jwks_file": "%s", "audiences": ["%s"], "token_type": "at+jwt"}]}]' \
    "$JWT_ISSUER" "$1" "$JWT_AUDIENCE"
}

# openssl speed, pinned to the DUT's CPU: verify/s of RSA-2048 and ECDSA P-256 on that one core.
run_openssl_speed() {
  log "openssl speed -seconds 3 rsa2048 ecdsap256 on CPU $DUT_CPU"
  taskset -c "$DUT_CPU" openssl speed -seconds 3 rsa2048 ecdsap256 >"$WORK/openssl-speed.txt" 2>/dev/null \
    || die "openssl speed failed"
  OPENSSL_RSA_VERIFY=$(awk '/^rsa 2048 bits/ { print $NF }' "$WORK/openssl-speed.txt")
  OPENSSL_EC_VERIFY=$(awk '/ecdsa \(nistp256\)/ { print $NF }' "$WORK/openssl-speed.txt")
  if [ -z "$OPENSSL_RSA_VERIFY" ] || [ -z "$OPENSSL_EC_VERIFY" ]; then
    cat "$WORK/openssl-speed.txt" >&2
    die "cannot read openssl speed"
  fi
  log "openssl on CPU $DUT_CPU: RSA-2048 verify/s $OPENSSL_RSA_VERIFY, ECDSA P-256 verify/s $OPENSSL_EC_VERIFY"
}

# ---------------------------------------------------------------------------------------------------
# Traffic policies: rate limits in process and in Redis, request signing (TRAFFIC=1)

# prepare_traffic: the signing secret (64 bytes, a file readable by this user only).
prepare_traffic() {
  mkdir -p "$WORK/traffic" "$WORK/redis"
  SIGN_SECRET_FILE=$WORK/traffic/sign.key
  (umask 077 && openssl rand -hex 32 | tr -d '\n' >"$SIGN_SECRET_FILE") || die "cannot write the signing secret"
  [ "$(wc -c <"$SIGN_SECRET_FILE")" -eq 64 ] || die "$SIGN_SECRET_FILE: expected a 64-byte secret"
}

# rate_limit_policy STORE: the route's policies array. Per-IP and per-tenant limits of 1e9/s (never refusing);
# the tenant is the X-Scope-OrgID header, as the benchmark has no authentication.
rate_limit_policy() {
  local store=""
  [ "$1" = redis ] && store='"store": "redis", '
  printf '[{"type": "rate_limit", %s"limits": [%s, %s]}]' "$store" \
    '{"name": "bench-ip", "key": "client_ip", "rate": 1e9, "per": "second"}' \
    '{"name": "bench-tenant", "key": "header", "header": "X-Scope-OrgID", "rate": 1e9, "per": "second"}'
}

sign_policy() {
  printf '[{"type": "sign", "key_id": "%s", "secret_file": "%s", "headers": ["x-scope-orgid", "content-type"]}]' \
    "$SIGN_KEY_ID" "$SIGN_SECRET_FILE"
}

# start_redis: a redis-server on LOAD_CPU (like the backend), nothing persisted, its files in $WORK/redis.
start_redis() {
  start_server redis "$LOAD_CPU" "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/redis" --daemonize no --logfile ''
  wait_listening redis "$REDIS_PORT"
  REDIS_VERSION=$("$REDIS_SERVER" --version | awk '{print $3}' | sed 's/^v=//')
}

start_traffic_servers() {
  start_redis
  start_gatewayd gatewayd-limits "$LIMITS_PORT" "$DUT_CPU" 1 "$(rate_limit_policy local)" "$TRAFFIC_ADMIN_BASE_PORT"
  start_gatewayd gatewayd-limits-redis "$LIMITS_REDIS_PORT" "$DUT_CPU" 1 "$(rate_limit_policy redis)" \
    "$((TRAFFIC_ADMIN_BASE_PORT + 1))" "\"redis\": {\"address\": \"127.0.0.1:$REDIS_PORT\", \"timeout_ms\": 50}"
  start_gatewayd gatewayd-sign "$SIGN_PORT" "$DUT_CPU" 1 "$(sign_policy)" "$((TRAFFIC_ADMIN_BASE_PORT + 2))"
  add_column gatewayd-limits gatewayd-limits "$LIMITS_PORT" 1
  add_column gatewayd-limits-redis gatewayd-limits-redis "$LIMITS_REDIS_PORT" 1
  add_column gatewayd-sign gatewayd-sign "$SIGN_PORT" 1
  COLUMN_TRAFFIC_ADMIN[gatewayd-limits]=$TRAFFIC_ADMIN_BASE_PORT
  COLUMN_TRAFFIC_ADMIN[gatewayd-limits-redis]=$((TRAFFIC_ADMIN_BASE_PORT + 1))
  COLUMN_TRAFFIC_ADMIN[gatewayd-sign]=$((TRAFFIC_ADMIN_BASE_PORT + 2))
}

start_all_servers() {
  start_backend backend "$BACKEND_PORT" "$LOAD_CPU"
  start_backend direct "$DIRECT_PORT" "$DUT_CPU"
  start_gatewayd gatewayd "$GATEWAY_PORT" "$DUT_CPU" 1
  start_nginx_proxy nginx "$NGINX_PORT" "$DUT_CPU"
  add_column direct direct "$DIRECT_PORT" 1
  add_column gatewayd gatewayd "$GATEWAY_PORT" 1
  add_column nginx nginx "$NGINX_PORT" 1
  if [ "$UNPINNED" = 1 ]; then
    # Separate processes: an affinity set by taskset cannot be lifted for one column only.
    start_gatewayd gatewayd-unpinned "$GATEWAY_UNPINNED_PORT" "" 1
    start_gatewayd gatewayd-2t "$GATEWAY_2T_PORT" "" 2
    add_column gatewayd-unpinned gatewayd-unpinned "$GATEWAY_UNPINNED_PORT" 0
    add_column gatewayd-2t gatewayd-2t "$GATEWAY_2T_PORT" 0
  fi
  if [ "$JWT" = 1 ]; then
    start_gatewayd gatewayd-jwt-cached "$JWT_CACHED_PORT" "$DUT_CPU" 1 \
      "$(jwt_policy "$WORK/jwt/rs256.jwks.json")" "$JWT_ADMIN_BASE_PORT"
    start_gatewayd gatewayd-jwt-new-RS256 "$JWT_NEW_RS256_PORT" "$DUT_CPU" 1 \
      "$(jwt_policy "$WORK/jwt/rs256.jwks.json")" "$((JWT_ADMIN_BASE_PORT + 1))"
    start_gatewayd gatewayd-jwt-new-ES256 "$JWT_NEW_ES256_PORT" "$DUT_CPU" 1 \
      "$(jwt_policy "$WORK/jwt/es256.jwks.json")" "$((JWT_ADMIN_BASE_PORT + 2))"
    add_column gatewayd-jwt-cached gatewayd-jwt-cached "$JWT_CACHED_PORT" 1 GET
    add_column gatewayd-jwt-new-RS256 gatewayd-jwt-new-RS256 "$JWT_NEW_RS256_PORT" 1 GET
    add_column gatewayd-jwt-new-ES256 gatewayd-jwt-new-ES256 "$JWT_NEW_ES256_PORT" 1 GET
    COLUMN_TOKEN[gatewayd-jwt-cached]=$JWT_CACHED_TOKEN
    COLUMN_TOKEN_FILE[gatewayd-jwt-new-RS256]=$WORK/jwt/rs256.tokens
    COLUMN_TOKEN_FILE[gatewayd-jwt-new-ES256]=$WORK/jwt/es256.tokens
    COLUMN_ADMIN[gatewayd-jwt-cached]=$JWT_ADMIN_BASE_PORT
    COLUMN_ADMIN[gatewayd-jwt-new-RS256]=$((JWT_ADMIN_BASE_PORT + 1))
    COLUMN_ADMIN[gatewayd-jwt-new-ES256]=$((JWT_ADMIN_BASE_PORT + 2))
    COLUMN_RESTART[gatewayd-jwt-new-RS256]=1
    COLUMN_RESTART[gatewayd-jwt-new-ES256]=1
  fi
  if [ "$TRAFFIC" = 1 ]; then start_traffic_servers; fi
}

# ---------------------------------------------------------------------------------------------------
# Measurement

write_wrk_script() {
  cat >"$WORK/bench.lua" <<'EOF'
-- GET: a small query. POST: a JSON body of BENCH_BODY_BYTES bytes. Prints one RESULT line at the end.
local method = os.getenv("BENCH_METHOD") or "GET"
local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "10240")
wrk.method = method
wrk.headers["User-Agent"] = "obsgw-proxy-bench"
if method == "POST" then
  wrk.path = "/api/v1/push"
  wrk.headers["Content-Type"] = "application/json"
  local record = '{"ts":1700000000,"level":"info","msg":"request served","latency_ms":12},'
  local body = "[" .. string.rep(record, math.floor((size - 2) / #record))
  wrk.body = body .. string.rep(" ", size - 1 - #body) .. "]"
else
  wrk.path = "/api/v1/query?query=up"
end

-- JWT columns. BENCH_TOKEN: every request carries this one token. BENCH_TOKEN_FILE: one token per request;
-- wrk thread k reads its own slice BENCH_TOKEN_FILE.k (one token per line) in order, so no two requests of one
-- run carry the same token unless a thread runs past the end of its slice (counted in "wrapped", reported).
-- The slice is read as requests are made, not loaded in init(): wrk starts thread 0 before it runs init() of
-- thread 1 and starts its clock only after that, so a slow init() would let uncounted time into the results.
local token, token_file = os.getenv("BENCH_TOKEN") or "", os.getenv("BENCH_TOKEN_FILE") or ""
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

-- TRAFFIC=1. BENCH_TENANTS = N > 0: every request carries X-Scope-OrgID, tenant-0 .. tenant-(N-1) in turn. With
-- N = 1 the header is static (no request() function); with N > 1 the N requests are formatted once per thread in
-- init() and request() hands them out in turn (with a token file, request() formats each request anyway).
local tenants, tenant_turn = tonumber(os.getenv("BENCH_TENANTS") or "0"), 0
if tenants == 1 then wrk.headers["X-Scope-OrgID"] = "tenant-0" end
local function next_tenant()
  tenant_turn = tenant_turn % tenants + 1
  return tenant_turn
end

local threads, next_tid = {}, 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

if token_file ~= "" then
  local slice
  wrapped = 0
  function init(args)
    slice = assert(io.open(token_file .. "." .. tid, "r"))
  end
  function request()
    local line = slice:read("*l")
    if not line then
      wrapped = wrapped + 1
      slice:seek("set", 0)
      line = slice:read("*l")
    end
    wrk.headers["Authorization"] = "Bearer " .. line
    if tenants > 1 then wrk.headers["X-Scope-OrgID"] = "tenant-" .. (next_tenant() - 1) end
    return wrk.format()
  end
elseif tenants > 1 then
  local formatted = {}
  function init(args)
    for t = 1, tenants do
      wrk.headers["X-Scope-OrgID"] = "tenant-" .. (t - 1)
      formatted[t] = wrk.format()
    end
  end
  function request()
    return formatted[next_tenant()]
  end
end

function done(summary, latency, requests)
  local e, wraps = summary.errors, 0
  for _, t in ipairs(threads) do wraps = wraps + (t:get("wrapped") or 0) end
  io.write(string.format("RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout, wraps))
end
EOF
}

# cpu_ticks PID: utime+stime of PID and its descendants (all threads), in clock ticks.
cpu_ticks() {
  local pid=$1 total=0 child fields
  [ -r "/proc/$pid/stat" ] || { echo 0; return 0; }
  fields=$(sed 's/^.*) //' "/proc/$pid/stat")   # drop "pid (comm) ": utime/stime are fields 12/13
  total=$(awk '{print $12 + $13}' <<<"$fields")
  for child in $(pgrep -P "$pid" || true); do total=$((total + $(cpu_ticks "$child"))); done
  echo "$total"
}

# user_ticks PID: utime alone (user space; the JWT section uses it to tell verification from kernel work).
user_ticks() {
  local pid=$1 total=0 child
  [ -r "/proc/$pid/stat" ] || { echo 0; return 0; }
  total=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12}')
  for child in $(pgrep -P "$pid" || true); do total=$((total + $(user_ticks "$child"))); done
  echo "$total"
}

# snapshot_other_cpu FILE: "pid ticks" (utime+stime) of every process outside this script's process tree,
# kernel threads left out. Two snapshots give the CPU that other users of the machine took during a
# measurement: the noise indicator of the report. It is a lower bound: a process that ends between the
# snapshots is not counted (a reaped child's time would land in its parent's cutime all at once, with the
# part spent before the measurement, so cutime is left out too).
snapshot_other_cpu() {
  # A process that ends between the glob and cat makes cat fail: not an error here (pipefail and set -e).
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v self=$$ '
    {
      pid = $1; rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      parent[pid] = f[2]; ticks[pid] = f[12] + f[13]
    }
    END {
      # Array keys are strings: compare PIDs as numbers (as strings, "12345" > 2 is false).
      for (p in parent) {
        q = p + 0; ours = 0
        for (depth = 0; depth < 64 && q > 2; depth++) { if (q == self + 0) { ours = 1; break }; q = parent[q] + 0 }
        if (!ours && q != 2 && p + 0 != 2) print p, ticks[p]
      }
    }' >"$1"
}

# other_cpu_pct BEFORE AFTER DURATION_US: CPU used by other processes, in % of one core.
other_cpu_pct() {
  awk -v hz="$CLK_TCK" -v d="$3" 'NR == FNR { before[$1] = $2; next }
    { delta = $2 - (($1 in before) ? before[$1] : 0); if (delta > 0) sum += delta }  # new processes count whole
    END { printf "%.0f", (d > 0 ? 100 * sum / hz * 1e6 / d : 0) }' "$1" "$2"
}

# run_wrk COLUMN METHOD DURATION: prints "requests duration_us p50_us p99_us non2xx socket_errors token_wraps"
run_wrk() {
  local column=$1 method=$2 duration=$3 url="http://127.0.0.1:${COLUMN_PORT[$1]}" out tenants=0
  local pin=(taskset -c "$LOAD_CPU")
  [ "${COLUMN_PINNED[$column]}" = 1 ] || pin=()
  [ "$TRAFFIC" = 1 ] && tenants=$TRAFFIC_TENANTS   # every column, so that all carry the same bytes
  out=$(BENCH_METHOD=$method BENCH_BODY_BYTES=$BODY_BYTES BENCH_TOKEN=${COLUMN_TOKEN[$1]:-} \
    BENCH_TOKEN_FILE=${COLUMN_TOKEN_FILE[$1]:-} BENCH_TENANTS=$tenants "${pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" \
    -d"$duration" --latency -s "$WORK/bench.lua" "$url" 2>&1) || { echo "$out" >&2; die "wrk failed on $column"; }
  grep '^RESULT ' <<<"$out" | cut -d' ' -f2- || { echo "$out" >&2; die "no RESULT from wrk on $column"; }
}

# check_answers COLUMN: GET must give 200 and POST 204 through every column before it is measured.
check_answers() {
  local column=$1 url="http://127.0.0.1:${COLUMN_PORT[$1]}" get post tenant=()
  [ "$TRAFFIC" = 1 ] && tenant=(-H 'X-Scope-OrgID: tenant-0')
  get=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${tenant[@]}" "$url/api/v1/query?query=up" || true)
  post=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x' |
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${tenant[@]}" -H 'Content-Type: application/json' \
      --data-binary @- "$url/api/v1/push" || true)
  if [ "$get" != 200 ] || [ "$post" != 204 ]; then
    die "$column answers GET $get (want 200), POST $post (want 204)"
  fi
}

# check_jwt_answers COLUMN: GET without a token must give 401, with the column's (first) token 200.
check_jwt_answers() {
  local column=$1 url="http://127.0.0.1:${COLUMN_PORT[$1]}/api/v1/query?query=up" token=${COLUMN_TOKEN[$1]:-} plain signed
  [ -n "$token" ] || token=$(head -1 "${COLUMN_TOKEN_FILE[$column]}")
  plain=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
  signed=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $token" "$url" || true)
  if [ "$plain" != 401 ] || [ "$signed" != 200 ]; then
    die "$column answers GET without a token $plain (want 401), with a valid token $signed (want 200)"
  fi
}

# auth_counters COLUMN: "verified cache_hits cache_misses" from the column's gatewayd /metrics.
auth_counters() {
  curl -s --max-time 5 "http://127.0.0.1:${COLUMN_ADMIN[$1]}/metrics" | awk '
    /^obsgw_jwt_verified_total / { v = $2 }
    /^obsgw_token_cache_lookups_total\{cache="jwt",result="hit"\} / { h = $2 }
    /^obsgw_token_cache_lookups_total\{cache="jwt",result="miss"\} / { m = $2 }
    END { if (v == "" || h == "" || m == "") exit 1; printf "%d %d %d\n", v, h, m }' \
    || die "cannot read the JWT counters of $1 from /metrics"
}

# traffic_counters COLUMN: "store_round_trips store_errors rate_limited" from the column's gatewayd /metrics
# (obsgw_rate_limit_store_duration_seconds_count, obsgw_rate_limit_store_errors_total and obsgw_rate_limited_total,
# the last two summed over their labels: absent while 0).
traffic_counters() {
  curl -s --max-time 5 "http://127.0.0.1:${COLUMN_TRAFFIC_ADMIN[$1]}/metrics" | awk '
    /^obsgw_rate_limit_store_duration_seconds_count / { c = $2; seen = 1 }
    /^obsgw_rate_limit_store_errors_total[{ ]/ { e += $2 }
    /^obsgw_rate_limited_total[{ ]/ { r += $2 }
    END { if (!seen) exit 1; printf "%d %d %d\n", c, e, r }' \
    || die "cannot read the rate-limit counters of $1 from /metrics"
}

# check_sign_answers: the sign column's signature, checked end to end on a GET and on a POST of BODY_BYTES. The
# backend's /bench/signature echoes the X-Gateway-* headers, method, target and signed header values it got; the
# canonical string (include/obsgw/request_signature.hpp) is rebuilt from them and its HMAC-SHA256 computed with
# openssl and the secret file; the body's SHA-256 is compared with sha256sum of what curl sent.
check_sign_answers() {
  local url="http://127.0.0.1:${COLUMN_PORT[gatewayd-sign]}/bench/signature?check=1" method body_sha mac canonical
  local -a f
  head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x' >"$WORK/traffic/body"
  for method in GET POST; do
    if [ "$method" = GET ]; then
      curl -s --max-time 5 -H 'X-Scope-OrgID: tenant-7' "$url" >"$WORK/traffic/echo" || true
      body_sha=$(sha256sum </dev/null | awk '{print $1}')
    else
      curl -s --max-time 5 -H 'X-Scope-OrgID: tenant-7' -H 'Content-Type: application/json' \
        --data-binary @"$WORK/traffic/body" "$url" >"$WORK/traffic/echo" || true
      body_sha=$(sha256sum <"$WORK/traffic/body" | awk '{print $1}')
    fi
    mapfile -t f <"$WORK/traffic/echo"
    if ! { [ "${#f[@]}" -eq 9 ] && [ "${f[1]}" = "$SIGN_KEY_ID" ] && [ "${f[2]}" = "$method" ] &&
      [ "${f[4]}" = "x-scope-orgid;content-type" ] && [ "${f[5]}" = "x-scope-orgid:tenant-7" ]; }; then
      cat "$WORK/traffic/echo" >&2
      die "gatewayd-sign $method: the backend did not get the expected signature headers"
    fi
    [ "${f[7]}" = "$body_sha" ] || die "gatewayd-sign $method: X-Gateway-Content-SHA256 ${f[7]}, want $body_sha"
    canonical=$(printf 'OBSGW-HMAC-SHA256\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s' "${f[@]:0:8}")
    mac=$(printf '%s' "$canonical" | openssl dgst -sha256 -mac HMAC -macopt "key:$(cat "$SIGN_SECRET_FILE")" | awk '{print $NF}')
    [ "${f[8]}" = "sha256=$mac" ] || die "gatewayd-sign $method: X-Gateway-Signature ${f[8]}, recomputed sha256=$mac"
  done
  log "gatewayd-sign: signatures of a GET and of a ${BODY_BYTES}-byte POST verified (HMAC recomputed with openssl)"
}

# check_traffic_answers COLUMN: the plain checks, then proof that the policy runs: RateLimit-* headers on the
# limit columns, one Redis round trip per request on the Redis one, a valid signature on the sign column.
check_traffic_answers() {
  local column=$1 url="http://127.0.0.1:${COLUMN_PORT[$1]}/api/v1/query?query=up" before after limit_header
  before=$(traffic_counters "$column")
  check_answers "$column"
  case $column in
    gatewayd-limits|gatewayd-limits-redis)
      limit_header=$(curl -s -D - -o /dev/null --max-time 5 -H 'X-Scope-OrgID: tenant-0' "$url" | tr -d '\r' |
        awk 'tolower($1) == "ratelimit-policy:" { print $2 }')
      [ -n "$limit_header" ] || die "$column: no RateLimit-Policy header in the answer (is the limiter running?)"
      after=$(traffic_counters "$column")
      if [ "$column" = gatewayd-limits-redis ]; then
        # check_answers made 2 requests and the header check 1: 3 decisions in Redis, no error.
        awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ");
          exit !(y[1] - x[1] >= 3 && y[2] == x[2]) }' \
          || die "$column: expected 3 Redis round trips and no store error, /metrics went from ($before) to ($after)"
      fi
      log "$column: RateLimit-Policy $limit_header; /metrics (store round trips, store errors, refused) $before -> $after"
      ;;
    gatewayd-sign) check_sign_answers ;;
  esac
}

# measure REP COLUMN METHOD: one wrk run, the DUT's CPU time around it; appends a row to $RAW.
# JWT columns also get a row in $AUTH_RAW: the verifications and cache lookups /metrics counted meanwhile.
measure() {
  local rep=$1 column=$2 method=$3 pid ticks_before ticks_after user_before user_after result auth_before="" auth_after
  local requests duration_us p50 p99 non2xx sock_err wraps other traffic_before="" redis_before=0 redis_after=0
  local -a a b
  if [ "${COLUMN_RESTART[$column]:-0}" = 1 ]; then restart_gatewayd "$column"; fi
  if [ -n "${COLUMN_ADMIN[$column]:-}" ]; then auth_before=$(auth_counters "$column"); fi
  if [ -n "${COLUMN_TRAFFIC_ADMIN[$column]:-}" ]; then traffic_before=$(traffic_counters "$column"); fi
  pid=${SERVER_PID[${COLUMN_DUT[$column]}]}
  snapshot_other_cpu "$WORK/other.before"
  [ "$column" = gatewayd-limits-redis ] && redis_before=$(cpu_ticks "${SERVER_PID[redis]}")
  ticks_before=$(cpu_ticks "$pid")
  user_before=$(user_ticks "$pid")
  result=$(run_wrk "$column" "$method" "$DURATION")
  ticks_after=$(cpu_ticks "$pid")
  user_after=$(user_ticks "$pid")
  [ "$column" = gatewayd-limits-redis ] && redis_after=$(cpu_ticks "${SERVER_PID[redis]}")
  snapshot_other_cpu "$WORK/other.after"
  read -r requests duration_us p50 p99 non2xx sock_err wraps <<<"$result"
  if [ -n "$traffic_before" ]; then
    read -r -a b <<<"$traffic_before"
    read -r -a a <<<"$(traffic_counters "$column")"
    awk -v rep="$rep" -v col="$column" -v m="$method" -v n="$requests" -v trips="$((a[0] - b[0]))" \
      -v errors="$((a[1] - b[1]))" -v refused="$((a[2] - b[2]))" -v t="$((redis_after - redis_before))" -v hz="$CLK_TCK" \
      'BEGIN { printf "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.2f\n", rep, col, m, n, trips, errors, refused,
                 (n > 0 ? t / hz * 1e6 / n : 0) }' >>"$TRAFFIC_RAW"
  fi
  if [ -n "$auth_before" ]; then
    auth_after=$(auth_counters "$column")
    read -r -a b <<<"$auth_before"
    read -r -a a <<<"$auth_after"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$column" "$requests" "$((a[0] - b[0]))" "$((a[1] - b[1]))" \
      "$((a[2] - b[2]))" "$wraps" >>"$AUTH_RAW"
    [ "$wraps" = 0 ] || log "WARNING: $column: wrk threads ran past their token slice $wraps times (tokens" \
      "repeated); raise JWT_TOKENS or shorten DURATION"
  fi
  awk -v rep="$rep" -v col="$column" -v m="$method" -v n="$requests" -v t="$((user_after - user_before))" \
    -v hz="$CLK_TCK" 'BEGIN { printf "%s\t%s\t%s\t%.2f\n", rep, col, m, (n > 0 ? t / hz * 1e6 / n : 0) }' >>"$USER_RAW"
  other=$(other_cpu_pct "$WORK/other.before" "$WORK/other.after" "$duration_us")
  awk -v rep="$rep" -v col="$column" -v m="$method" -v n="$requests" -v d="$duration_us" -v p50="$p50" \
    -v p99="$p99" -v bad="$((non2xx + sock_err))" -v t="$((ticks_after - ticks_before))" -v hz="$CLK_TCK" \
    -v other="$other" '
    BEGIN {
      cpu_s = t / hz
      printf "%s\t%s\t%s\t%.1f\t%d\t%d\t%.2f\t%.1f\t%d\t%d\t%d\n", rep, col, m, n * 1e6 / d, p50, p99,
        (n > 0 ? cpu_s * 1e6 / n : 0), 100 * cpu_s * 1e6 / d, bad, n, other
    }' >>"$RAW"
  log "rep $rep $column $method: $(tail -1 "$RAW" | cut -f4- | awk -F'\t' '{printf "%.0f req/s p50=%dus p99=%dus cpu=%.2fus/req dut=%.0f%% bad=%d other=%d%%", $1, $2, $3, $4, $5, $6, $8}')"
}

warm_up_and_check() {
  local column method result bad
  for column in "${COLUMNS[@]}"; do
    if [ -n "${COLUMN_ADMIN[$column]:-}" ]; then
      check_jwt_answers "$column"
    elif [ -n "${COLUMN_TRAFFIC_ADMIN[$column]:-}" ]; then
      check_traffic_answers "$column"
    else
      check_answers "$column"
    fi
    for method in ${COLUMN_METHODS[$column]}; do
      result=$(run_wrk "$column" "$method" "$WARMUP")
      bad=$(awk '{print $5 + $6}' <<<"$result")
      [ "$bad" = 0 ] || die "$column $method warm-up: $bad non-2xx answers or socket errors"
    done
  done
}

run_all_reps() {
  local rep method column
  printf 'rep\tcolumn\tmethod\trps\tp50_us\tp99_us\tcpu_us_per_req\tdut_cpu_pct\tbad\trequests\tother_cpu_pct\n' >"$RAW"
  printf 'rep\tcolumn\trequests\tverified\tcache_hits\tcache_misses\ttoken_wraps\n' >"$AUTH_RAW"
  printf 'rep\tcolumn\tmethod\tuser_us_per_req\n' >"$USER_RAW"
  printf 'rep\tcolumn\tmethod\trequests\tstore_round_trips\tstore_errors\trate_limited\tredis_cpu_us_per_req\n' >"$TRAFFIC_RAW"
  for rep in $(seq 1 "$REPS"); do
    for method in GET POST; do
      for column in "${COLUMNS[@]}"; do
        if column_has_method "$column" "$method"; then measure "$rep" "$column" "$method"; fi
      done
    done
  done
}

# ---------------------------------------------------------------------------------------------------
# Report

# medians METHOD: "column rps p50 p99 cpu dut_pct bad_total other_max" per column: medians over the reps,
# except bad (summed) and other (the largest, to flag a disturbed column).
medians() {
  local method=$1 column
  for column in "${COLUMNS[@]}"; do
    awk -F'\t' -v c="$column" -v m="$method" '
      function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      NR > 1 && $2 == c && $3 == m {
        n++; r[n] = $4; p5[n] = $5; p9[n] = $6; cu[n] = $7; du[n] = $8; bad += $9; if ($11 > other) other = $11
      }
      END { if (n) printf "%s %.0f %.0f %.0f %.2f %.0f %d %d\n", c, median(r, n), median(p5, n), median(p9, n),
              median(cu, n), median(du, n), bad, other }' "$RAW"
  done
}

machine_info() {
  local cpu_model commit
  cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
  commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  local changed
  changed=$( { git -C "$REPO" diff --name-only HEAD -- lib include apps
    git -C "$REPO" ls-files --others --exclude-standard -- lib include apps; } 2>/dev/null | paste -sd, - | sed 's/,/, /g')
  [ -z "$changed" ] || commit="$commit (lib/include/apps modified: $changed)"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, $cpu_model, kernel $(uname -r), load average at start: $LOAD_AT_START"
  echo "- gatewayd: \`$GATEWAYD\`, commit $commit, access log $([ "$ACCESS_LOG" = 1 ] && echo on || echo off)"
  echo "- peers: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "- load: wrk -t$WRK_THREADS -c$CONNS -d$DURATION, $REPS reps interleaved, medians reported;" \
    "POST body $BODY_BYTES bytes"
  echo "- pinning: server under test on CPU $DUT_CPU, wrk and backend on CPU $LOAD_CPU (taskset)"
  local settings="REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS WRK_THREADS=$WRK_THREADS"
  settings+=" BODY_BYTES=$BODY_BYTES ACCESS_LOG=$ACCESS_LOG UNPINNED=$UNPINNED JWT=$JWT TRAFFIC=$TRAFFIC"
  [ "$JWT" = 1 ] && settings+=" JWT_TOKENS=$JWT_TOKENS JWT_TOKEN_TTL_S=$JWT_TOKEN_TTL_S"
  [ "$TRAFFIC" = 1 ] && settings+=" TRAFFIC_TENANTS=$TRAFFIC_TENANTS"
  echo "- settings: $settings"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# jwt_totals: per JWT column, summed over the reps: "column requests verified cache_hits cache_misses wraps"
jwt_totals() {
  awk -F'\t' 'NR > 1 {
      if (!($2 in n)) order[++k] = $2
      n[$2] += $3; v[$2] += $4; h[$2] += $5; m[$2] += $6; w[$2] += $7
    }
    END { for (i = 1; i <= k; i++) { c = order[i]; printf "%s %d %d %d %d %d\n", c, n[c], v[c], h[c], m[c], w[c] } }' "$AUTH_RAW"
}

# user_medians METHOD: "column user_us_per_req" (median over the reps) per column.
user_medians() {
  awk -F'\t' -v m="$1" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 && $3 == m { if (!($2 in n)) order[++k] = $2; n[$2]++; v[$2, n[$2]] = $4 }
    END {
      for (i = 1; i <= k; i++) {
        c = order[i]; delete a
        for (j = 1; j <= n[c]; j++) a[j] = v[c, j]
        printf "%s %.2f\n", c, median(a, n[c])
      }
    }' "$USER_RAW"
}

# write_jwt_section: the JWT part of the report (GET medians of this run), sets JWT_OVERALL.
write_jwt_section() {
  local column r p9 cu n v h w alg new_col verify_s openssl_us cost_gw cost_cached eff verdict
  local jwt_pass=1 path_ok=1
  local -A rps=() p99=() cpu=() user=() per_verified=() per_hit=() wraps=()
  local user_gw user_eff
  while read -r column r _ p9 cu _; do
    rps[$column]=$r; p99[$column]=$p9; cpu[$column]=$cu
  done < <(medians GET)
  while read -r column cu; do user[$column]=$cu; done < <(user_medians GET)
  while read -r column n v h _ w; do
    per_verified[$column]=$(awk -v a="$v" -v b="$n" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    per_hit[$column]=$(awk -v a="$h" -v b="$n" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    wraps[$column]=$w
  done < <(jwt_totals)
  echo
  echo "## JWT authentication (GET)"
  echo
  echo "Same run and pinning as above. Each JWT column is its own gatewayd (1 io thread) whose one route has a" \
    "\`jwt\` policy: issuer \`$JWT_ISSUER\`, a local JWK Set file (one key, kid \`k1\`), audience \`$JWT_AUDIENCE\`" \
    "and token type \`at+jwt\` checked, default token cache (10000 entries per io thread), identity headers on" \
    "(defaults). Tokens: RFC 9068-shaped access tokens, $JWT_TOKEN_BYTES_RS256 bytes (RS256, RSA-2048) and" \
    "$JWT_TOKEN_BYTES_ES256 bytes (ES256, P-256); $JWT_TOKENS per algorithm, generated in ${JWT_GEN_SECONDS} s" \
    "before measuring. \`jwt-cached\`: every request carries the same token (cache hit)." \
    "\`jwt-new-*\`: every request carries a different token (wrk threads cycle through disjoint slices of the" \
    "token file) and the gatewayd is restarted before each measurement, so no token reaches one process twice."
  echo
  echo "| column | req/s | × gatewayd | × nginx | p99 ms | DUT CPU µs/req | over gatewayd | of which user space µs/req | over gatewayd | signature checks / req | cache hits / req | token wraps |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for column in gatewayd nginx gatewayd-jwt-cached gatewayd-jwt-new-RS256 gatewayd-jwt-new-ES256; do
    [ -n "${rps[$column]:-}" ] || continue
    awk -v c="$column" -v r="${rps[$column]}" -v g="${rps[gatewayd]}" -v ng="${rps[nginx]}" -v p9="${p99[$column]}" \
      -v cu="${cpu[$column]}" -v gc="${cpu[gatewayd]}" -v us="${user[$column]}" -v gu="${user[gatewayd]}" \
      -v pv="${per_verified[$column]:--}" -v ph="${per_hit[$column]:--}" -v w="${wraps[$column]:--}" \
      -v jwt="${COLUMN_ADMIN[$column]:-}" 'BEGIN {
        printf "| %s | %d | %.2f | %.2f | %.3f | %.2f | %s | %.2f | %s | %s | %s | %s |\n", c, r, r / g, r / ng, p9 / 1000,
          cu, (jwt != "" ? sprintf("%+.2f", cu - gc) : "–"), us, (jwt != "" ? sprintf("%+.2f", us - gu) : "–"), pv, ph, w }'
  done
  echo
  echo "Signature checks and cache hits per request: counted by the gatewayd itself (\`obsgw_jwt_verified_total\`," \
    "\`obsgw_token_cache_lookups_total\` from its /metrics, read before and after each measurement) over the" \
    "requests wrk completed; slightly above 1.000 for the new columns because requests still in flight when wrk" \
    "stops are verified but not counted by wrk. Token wraps: a wrk thread ran past its slice (0 = no token repeated)."
  echo
  echo "\`openssl speed -seconds 3 rsa2048 ecdsap256\` on CPU $DUT_CPU, same run ($(openssl version | awk '{print $1, $2}')):"
  echo
  echo '```'
  grep -E 'sign/s|^rsa 2048|nistp256' "$WORK/openssl-speed.txt"
  echo '```'
  echo
  echo "| algorithm | openssl verify/s (1 core) | openssl µs / verify | jwt-new − gatewayd µs/req | jwt-new − jwt-cached µs/req | openssl µs / (jwt-new − gatewayd) | user space only: jwt-new − gatewayd µs/req | openssl µs / that |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for alg in RS256 ES256; do
    new_col=gatewayd-jwt-new-$alg
    [ -n "${cpu[$new_col]:-}" ] || continue
    if [ "$alg" = RS256 ]; then verify_s=$OPENSSL_RSA_VERIFY; else verify_s=$OPENSSL_EC_VERIFY; fi
    openssl_us=$(awk -v s="$verify_s" 'BEGIN { printf "%.2f", 1e6 / s }')
    cost_gw=$(awk -v a="${cpu[$new_col]}" -v b="${cpu[gatewayd]}" 'BEGIN { printf "%.2f", a - b }')
    cost_cached=$(awk -v a="${cpu[$new_col]}" -v b="${cpu[gatewayd-jwt-cached]}" 'BEGIN { printf "%.2f", a - b }')
    eff=$(ratio "$openssl_us" "$cost_gw")
    user_gw=$(awk -v a="${user[$new_col]}" -v b="${user[gatewayd]}" 'BEGIN { printf "%.2f", a - b }')
    user_eff=$(ratio "$openssl_us" "$user_gw")
    echo "| $alg | $verify_s | $openssl_us | $cost_gw | $cost_cached | **$eff** | $user_gw | $user_eff |"
    verdict=$(awk -v e="$eff" 'BEGIN { print (e + 0 >= 0.80) ? "PASS" : "MISS" }')
    [ "$verdict" = PASS ] || jwt_pass=0
    VERDICTS+=("JWT $alg new token: ${rps[$new_col]} req/s, ${cpu[$new_col]} us/req; verification $cost_gw us/req vs openssl $openssl_us us/verify -> efficiency $eff -> $verdict (goal >= 0.80)")
    JWT_LINES+=("$alg verification efficiency (openssl µs per verify / the jwt-new column's CPU µs per request over gatewayd's): **$eff** → **$verdict** (goal: approaching openssl, read as ≥ 0.80)")
    awk -v v="${per_verified[$new_col]:-0}" -v h="${per_hit[$new_col]:-1}" 'BEGIN { exit !(v >= 0.99 && h == 0) }' \
      || path_ok=0
  done
  echo
  echo "Verification cost as defined for the goal: DUT CPU µs/req of jwt-new minus that of gatewayd (same run)." \
    "It includes more than the signature: base64url and JSON decoding, claim checks, the token-cache insert," \
    "the longer request head, and kernel time that grows as the request rate falls (wrk and the backend on" \
    "CPU $LOAD_CPU idle between requests, so more sends have to wake a sleeping task on the other core)." \
    "The user-space columns (utime only) leave that kernel share out."
  r=$(ratio "${rps[gatewayd-jwt-cached]}" "${rps[gatewayd]}")
  verdict=$(awk -v r="$r" 'BEGIN { print (r + 0 >= 0.95) ? "PASS" : "MISS" }')
  [ "$verdict" = PASS ] || jwt_pass=0
  awk -v v="${per_verified[gatewayd-jwt-cached]:-1}" 'BEGIN { exit !(v < 0.001) }' || path_ok=0
  VERDICTS+=("JWT cached token: jwt-cached/gatewayd req/s $r, CPU/req $(ratio "${cpu[gatewayd-jwt-cached]}" "${cpu[gatewayd]}") -> $verdict (goal >= 0.95)")
  echo
  echo "- jwt-cached / gatewayd: req/s **$r**, CPU/req **$(ratio "${cpu[gatewayd-jwt-cached]}" "${cpu[gatewayd]}")**" \
    "($(awk -v a="${cpu[gatewayd-jwt-cached]}" -v b="${cpu[gatewayd]}" 'BEGIN { printf "%+.2f", a - b }') µs/req)" \
    "→ **$verdict** (goal: req/s ≥ 0.95×)"
  for r in "${JWT_LINES[@]}"; do echo "- $r"; done
  if [ "$path_ok" = 1 ]; then
    echo "- measured path: every new-token request was verified (≥ 0.99 signature checks per request, no cache hit);" \
      "the cached column verified nothing during the measurements."
  else
    echo "- **WARNING: the measured path is not the intended one** (see signature checks / cache hits per request)."
    jwt_pass=0
  fi
  echo
  echo "JWT overall: **$([ "$jwt_pass" = 1 ] && echo PASS || echo MISS)**"
  JWT_OVERALL=$([ "$jwt_pass" = 1 ] && echo PASS || echo MISS)
  return 0
}

# traffic_totals: per traffic column and method, summed over the reps:
# "column method requests store_round_trips store_errors rate_limited" and the median redis CPU µs/req.
traffic_totals() {
  awk -F'\t' '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 {
      k = $2 " " $3
      if (!(k in n)) order[++m] = k
      n[k] += $4; trips[k] += $5; err[k] += $6; ref[k] += $7; reps[k]++; red[k, reps[k]] = $8
    }
    END {
      for (i = 1; i <= m; i++) {
        k = order[i]; delete a
        for (j = 1; j <= reps[k]; j++) a[j] = red[k, j]
        printf "%s %d %d %d %d %.2f\n", k, n[k], trips[k], err[k], ref[k], median(a, reps[k])
      }
    }' "$TRAFFIC_RAW"
}

# write_traffic_section: the traffic-policy part of the report (medians of this run), sets TRAFFIC_OVERALL.
write_traffic_section() {
  local method column r verdict line n trips errors refused redis_us proof_ok=1 traffic_pass=1 _p50 _p99 _cpu _bad
  local -A rps=() p50=() p99=() cpu=() user=() bad=()
  for method in GET POST; do
    while read -r column r _p50 _p99 _cpu _ _bad _; do
      rps[$column,$method]=$r; p50[$column,$method]=$_p50; p99[$column,$method]=$_p99; cpu[$column,$method]=$_cpu
      bad[$column,$method]=$_bad
    done < <(medians "$method")
    while read -r column _cpu; do user[$column,$method]=$_cpu; done < <(user_medians "$method")
  done
  echo
  echo "## Traffic policies"
  echo
  echo "Same run and pinning as above. Each traffic column is its own gatewayd (1 io thread, an admin listener for" \
    "/metrics) whose one route has:"
  echo
  echo "- \`gatewayd-limits\`: \`$(rate_limit_policy local)\` — limits that never refuse, so the cost of deciding" \
    "is measured (the default \`response_headers: true\` adds the \`RateLimit-*\` headers to every answer)." \
    "The per-tenant limit is keyed by the \`X-Scope-OrgID\` header because the benchmark has no authentication" \
    "(a deployment keys it by \`tenant\` after JWT or HMAC authentication)."
  echo "- \`gatewayd-limits-redis\`: the same limits with \`\"store\": \"redis\"\` and" \
    "\`\"redis\": {\"address\": \"127.0.0.1:$REDIS_PORT\", \"timeout_ms\": 50}\`, against redis-server" \
    "$REDIS_VERSION started by the script (\`--save '' --appendonly no\`) on CPU $LOAD_CPU with wrk and the backend:" \
    "one \`EVALSHA\` per request, pipelined on the io thread's connection."
  echo "- \`gatewayd-sign\`: \`[{\"type\": \"sign\", \"key_id\": \"$SIGN_KEY_ID\", \"secret_file\": FILE," \
    "\"headers\": [\"x-scope-orgid\", \"content-type\"]}]\` (64-byte secret): SHA-256 of the body (read whole" \
    "first), HMAC-SHA256 of the canonical string, five \`X-Gateway-*\` headers. Checked before measuring: the" \
    "signature the backend received was recomputed with openssl (GET and POST)."
  echo
  echo "wrk sends \`X-Scope-OrgID\` on every request of every column (plain ones too, so all columns carry the" \
    "same bytes), cycling through $TRAFFIC_TENANTS tenants (\`tenant-0\` ..) request by request; every request" \
    "comes from 127.0.0.1, so the per-IP limit has one bucket."
  for method in GET POST; do
    echo
    echo "### $method"
    echo
    echo "| column | req/s | × gatewayd | × nginx | p50 ms | p99 ms | DUT CPU µs/req | over gatewayd | of which user space µs/req | over gatewayd | non-2xx + errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for column in gatewayd nginx gatewayd-limits gatewayd-limits-redis gatewayd-sign; do
      [ -n "${rps[$column,$method]:-}" ] || continue
      awk -v c="$column" -v r="${rps[$column,$method]}" -v g="${rps[gatewayd,$method]}" -v ng="${rps[nginx,$method]}" \
        -v p5="${p50[$column,$method]}" -v p9="${p99[$column,$method]}" -v cu="${cpu[$column,$method]}" \
        -v gc="${cpu[gatewayd,$method]}" -v us="${user[$column,$method]}" -v gu="${user[gatewayd,$method]}" \
        -v b="${bad[$column,$method]}" 'BEGIN {
          t = (c ~ /^gatewayd-/)
          printf "| %s | %d | %.3f | %.3f | %.3f | %.3f | %.2f | %s | %.2f | %s | %d |\n", c, r, r / g, r / ng, p5 / 1000,
            p9 / 1000, cu, (t ? sprintf("%+.2f", cu - gc) : "–"), us, (t ? sprintf("%+.2f", us - gu) : "–"), b }'
    done
  done
  echo
  echo "### Goals"
  echo
  for method in GET POST; do
    r=$(ratio "${rps[gatewayd-limits,$method]}" "${rps[gatewayd,$method]}")
    verdict=$(awk -v r="$r" 'BEGIN { print (r + 0 >= 0.95) ? "PASS" : "MISS" }')
    [ "$verdict" = PASS ] || traffic_pass=0
    VERDICTS+=("Traffic $method: limits/gatewayd req/s $r -> $verdict (goal >= 0.95)")
    echo "- $method in-process limits: gatewayd-limits / gatewayd req/s **$r**" \
      "($(awk -v a="${cpu[gatewayd-limits,$method]}" -v b="${cpu[gatewayd,$method]}" 'BEGIN { printf "%+.2f", a - b }')" \
      "µs DUT CPU per request) → **$verdict** (goal: at most 5% throughput cost, ≥ 0.95)"
  done
  for method in GET POST; do
    r=$(ratio "${rps[gatewayd-limits-redis,$method]}" "${rps[gatewayd-limits,$method]}")
    verdict=$(awk -v r="$r" 'BEGIN { print (r + 0 >= 0.5) ? "PASS" : "MISS" }')
    [ "$verdict" = PASS ] || traffic_pass=0
    VERDICTS+=("Traffic $method: limits-redis ${rps[gatewayd-limits-redis,$method]} req/s, p99 $(awk -v p="${p99[gatewayd-limits-redis,$method]}" 'BEGIN { printf "%.3f", p / 1000 }') ms; limits-redis/limits req/s $r -> $verdict (goal >= 0.5)")
    echo "- $method limits in Redis: **${rps[gatewayd-limits-redis,$method]} req/s**, p99" \
      "**$(awk -v p="${p99[gatewayd-limits-redis,$method]}" 'BEGIN { printf "%.3f", p / 1000 }') ms**" \
      "(in process: $(awk -v p="${p99[gatewayd-limits,$method]}" 'BEGIN { printf "%.3f", p / 1000 }') ms);" \
      "gatewayd-limits-redis / gatewayd-limits req/s **$r** → **$verdict** (goal: at least half the in-process throughput)"
  done
  r=$(ratio "${rps[gatewayd-sign,POST]}" "${rps[gatewayd,POST]}")
  verdict=$(awk -v r="$r" 'BEGIN { print (r + 0 >= 0.90) ? "PASS" : "MISS" }')
  [ "$verdict" = PASS ] || traffic_pass=0
  line=$(awk -v a="${cpu[gatewayd-sign,POST]}" -v b="${cpu[gatewayd,POST]}" 'BEGIN { printf "%.2f", a - b }')
  VERDICTS+=("Traffic POST: sign/gatewayd req/s $r -> $verdict (goal >= 0.90); added DUT CPU $line us/req (later goal <= 8)")
  echo "- POST $BODY_BYTES-byte body signed: gatewayd-sign / gatewayd req/s **$r** → **$verdict**" \
    "(goal: at most 10% throughput cost, ≥ 0.90)"
  echo "- GET signed (no body, for information): gatewayd-sign / gatewayd req/s" \
    "**$(ratio "${rps[gatewayd-sign,GET]}" "${rps[gatewayd,GET]}")**," \
    "$(awk -v a="${cpu[gatewayd-sign,GET]}" -v b="${cpu[gatewayd,GET]}" 'BEGIN { printf "%+.2f", a - b }') µs DUT CPU per request"
  echo "- signing's added gatewayd CPU per POST (sign − gatewayd DUT CPU µs/req, for information): **$line µs**" \
    "(user space only: $(awk -v a="${user[gatewayd-sign,POST]}" -v b="${user[gatewayd,POST]}" 'BEGIN { printf "%.2f", a - b }') µs)" \
    "→ $(awk -v c="$line" 'BEGIN { print (c + 0 <= 8) ? "within" : "above" }') the later goal of ≤ 8 µs"
  for method in GET POST; do
    echo "- regression check $method: gatewayd / nginx req/s **$(ratio "${rps[gatewayd,$method]}" "${rps[nginx,$method]}")**," \
      "p99 **$(ratio "${p99[gatewayd,$method]}" "${p99[nginx,$method]}")** (see the $method table above)"
  done
  echo
  echo "### Proof of the measured path (/metrics of each traffic gatewayd, read around every measurement)"
  echo
  echo "| column | method | requests (wrk, all reps) | Redis round trips | per request | store errors | refused (429) | redis-server CPU µs/req (median) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  while read -r column method n trips errors refused redis_us; do
    awk -v c="$column" -v m="$method" -v n="$n" -v t="$trips" -v e="$errors" -v f="$refused" -v ru="$redis_us" 'BEGIN {
      printf "| %s | %s | %d | %d | %.3f | %d | %d | %s |\n", c, m, n, t, (n > 0 ? t / n : 0), e, f,
        (c == "gatewayd-limits-redis" ? sprintf("%.2f", ru) : "–") }'
    [ "$errors" = 0 ] && [ "$refused" = 0 ] || proof_ok=0
    if [ "$column" = gatewayd-limits-redis ]; then
      awk -v n="$n" -v t="$trips" 'BEGIN { exit !(n > 0 && t / n >= 0.99 && t / n <= 1.05) }' || proof_ok=0
    elif [ "$trips" != 0 ]; then
      proof_ok=0
    fi
  done < <(traffic_totals)
  echo
  echo "Redis round trips: \`obsgw_rate_limit_store_duration_seconds_count\`; store errors:" \
    "\`obsgw_rate_limit_store_errors_total\` (decisions Redis did not answer within timeout_ms, which would have" \
    "fallen back to in-process buckets); refused: \`obsgw_rate_limited_total\`. Round trips per request sit slightly" \
    "above 1.000 because requests still in flight when wrk stops are decided but not counted by wrk." \
    "redis-server CPU: utime+stime of the redis-server process during the Redis column's measurements, per request" \
    "(on CPU $LOAD_CPU, not part of the DUT CPU)."
  if [ "$proof_ok" = 1 ]; then
    echo
    echo "Measured path: every Redis-column request was decided in Redis (0.99–1.05 round trips per request, no store" \
      "error), no column refused a request, and the other columns made no Redis round trip."
  else
    echo
    echo "**WARNING: the measured path is not the intended one** (see the table above)."
    traffic_pass=0
  fi
  echo
  echo "Traffic overall: **$([ "$traffic_pass" = 1 ] && echo PASS || echo MISS)**"
  TRAFFIC_OVERALL=$([ "$traffic_pass" = 1 ] && echo PASS || echo MISS)
  return 0
}

write_report() {
  local method column rps p50 p99 cpu dut bad other verdict r_rps r_p99 r_cpu all_pass=1
  local -A gw=() ng=()
  {
    if [ "$JWT" = 1 ] && [ "$TRAFFIC" = 1 ]; then
      echo "# gatewayd vs nginx: reverse-proxy benchmark, with JWT authentication and traffic policies"
    elif [ "$TRAFFIC" = 1 ]; then
      echo "# gatewayd vs nginx: reverse-proxy benchmark, with traffic policies (rate limits, Redis, signing)"
    elif [ "$JWT" = 1 ]; then
      echo "# gatewayd vs nginx: reverse-proxy benchmark, with JWT authentication"
    else
      echo "# gatewayd vs nginx: reverse-proxy benchmark"
    fi
    echo
    machine_info
    if [ "$JWT" = 1 ]; then
      echo "- JWT columns (GET only): gatewayd-jwt-cached, gatewayd-jwt-new-RS256, gatewayd-jwt-new-ES256;" \
        "$JWT_TOKENS tokens per algorithm; see the JWT section"
    fi
    if [ "$TRAFFIC" = 1 ]; then
      echo "- traffic columns (GET and POST): gatewayd-limits, gatewayd-limits-redis, gatewayd-sign; every request" \
        "of every column carries X-Scope-OrgID (tenant-0 .. tenant-$((TRAFFIC_TENANTS - 1)) in turn);" \
        "redis-server $REDIS_VERSION on CPU $LOAD_CPU; see the traffic section"
    fi
    for method in GET POST; do
      echo
      echo "## $method"
      echo
      echo "| column | req/s | p50 ms | p99 ms | DUT CPU µs/req | DUT CPU % | non-2xx + errors | other CPU % (max) |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|"
      while read -r column rps p50 p99 cpu dut bad other; do
        awk -v c="$column" -v r="$rps" -v p5="$p50" -v p9="$p99" -v cu="$cpu" -v d="$dut" -v b="$bad" -v o="$other" \
          'BEGIN { printf "| %s | %d | %.3f | %.3f | %.2f | %d | %d | %d |\n", c, r, p5 / 1000, p9 / 1000, cu, d, b, o }'
        case $column in
          gatewayd) gw=([rps]=$rps [p99]=$p99 [cpu]=$cpu) ;;
          nginx) ng=([rps]=$rps [p99]=$p99 [cpu]=$cpu) ;;
        esac
      done < <(medians "$method")
      r_rps=$(ratio "${gw[rps]}" "${ng[rps]}")
      r_p99=$(ratio "${gw[p99]}" "${ng[p99]}")
      r_cpu=$(ratio "${gw[cpu]}" "${ng[cpu]}")
      verdict=$(awk -v r="$r_rps" -v p="$r_p99" 'BEGIN { print (r + 0 >= 1.0 && p + 0 <= 1.2) ? "PASS" : "MISS" }')
      [ "$verdict" = PASS ] || all_pass=0
      VERDICTS+=("$method: gatewayd/nginx req/s $r_rps, p99 $r_p99, CPU/req $r_cpu -> $verdict")
      echo
      echo "gatewayd/nginx: req/s **$r_rps**, p99 **$r_p99**, CPU/req **$r_cpu** → **$verdict**" \
        "(goal: req/s ≥ 1.0×, p99 ≤ 1.2×)"
    done
    echo
    echo "Overall (gatewayd vs nginx): **$([ "$all_pass" = 1 ] && echo PASS || echo MISS)**"
    if [ "$JWT" = 1 ]; then write_jwt_section; fi
    if [ "$TRAFFIC" = 1 ]; then write_traffic_section; fi
    echo
    echo "DUT CPU µs/req: utime+stime of the server under test (nginx: master and worker) over the run," \
      "divided by the requests; it leaves out softirq time the kernel charges to no process." \
      "DUT CPU % near 100 means the DUT core was the bottleneck. In \`direct\` the DUT is a second backend." \
      "Other CPU %: CPU taken by processes outside this benchmark during the measurement, in % of one core" \
      "(the largest over the reps; a lower bound: short-lived processes are missed); above ~10 the column" \
      "was disturbed by other work on the machine. Hypervisor steal time is not visible here."
    echo
    echo "<details><summary>Every measurement</summary>"
    echo
    echo "| rep | column | method | req/s | p50 µs | p99 µs | CPU µs/req | DUT CPU % | bad | requests | other CPU % |"
    echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$RAW" | awk -F'\t' '{ $4 = sprintf("%.0f", $4); $1 = $1; print "| " $0 " |" }' OFS=' | '
    if [ "$JWT" = 1 ]; then
      echo
      echo "JWT columns, counted by each gatewayd's /metrics around every measurement:"
      echo
      echo "| rep | column | requests (wrk) | signature checks | cache hits | cache misses | token wraps |"
      echo "|---:|---|---:|---:|---:|---:|---:|"
      tail -n +2 "$AUTH_RAW" | awk -F'\t' '{ $1 = $1; print "| " $0 " |" }' OFS=' | '
    fi
    if [ "$TRAFFIC" = 1 ]; then
      echo
      echo "Traffic columns, counted by each gatewayd's /metrics around every measurement:"
      echo
      echo "| rep | column | method | requests (wrk) | Redis round trips | store errors | refused | redis-server CPU µs/req |"
      echo "|---:|---|---|---:|---:|---:|---:|---:|"
      tail -n +2 "$TRAFFIC_RAW" | awk -F'\t' '{ $1 = $1; print "| " $0 " |" }' OFS=' | '
    fi
    echo
    echo "</details>"
  } >"$REPORT"
  [ "$all_pass" = 1 ] && OVERALL=PASS
  return 0
}

# ---------------------------------------------------------------------------------------------------

main() {
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/obsgw-proxy-bench.XXXXXX")
  mkdir -p "$WORK/logs" "$RESULTS_DIR"
  RAW=$WORK/raw.tsv
  AUTH_RAW=$WORK/auth.tsv
  USER_RAW=$WORK/user.tsv
  TRAFFIC_RAW=$WORK/traffic.tsv
  REPORT=$RESULTS_DIR/$(date +%Y-%m-%d)-proxy.md
  [ "$JWT" = 1 ] && REPORT=$RESULTS_DIR/$(date +%Y-%m-%d)-jwt.md
  [ "$TRAFFIC" = 1 ] && REPORT=$RESULTS_DIR/$(date +%Y-%m-%d)-traffic.md
  [ "$JWT" = 1 ] && [ "$TRAFFIC" = 1 ] && REPORT=$RESULTS_DIR/$(date +%Y-%m-%d)-jwt-traffic.md
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

  install_tools_if_missing
  require_tools
  build_gatewayd_if_needed
  check_ports_free
  if [ "$JWT" = 1 ]; then
    prepare_jwt
    run_openssl_speed
  fi
  if [ "$TRAFFIC" = 1 ]; then prepare_traffic; fi
  write_wrk_script
  start_all_servers
  warm_up_and_check
  run_all_reps
  write_report
  cat "$REPORT"
  log "report written to $REPORT"
  printf '%s\n' "${VERDICTS[@]}"
  echo "$OVERALL (goal: gatewayd req/s >= 1.0x nginx and p99 <= 1.2x nginx, GET and POST)"
  if [ "$JWT" = 1 ]; then
    echo "JWT $JWT_OVERALL (goals: jwt-cached req/s >= 0.95x gatewayd; verification >= 0.80x openssl's speed)"
  fi
  if [ "$TRAFFIC" = 1 ]; then
    echo "Traffic $TRAFFIC_OVERALL (goals: limits req/s >= 0.95x gatewayd; limits-redis >= 0.5x limits;" \
      "sign POST >= 0.90x gatewayd)"
  fi
}

main "$@"
