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
# Run:
#   benchmarks/proxy_bench.sh                       # builds Release gatewayd in build-release first
#   GATEWAYD=build/apps/gatewayd/gatewayd REPS=5 DURATION=5s benchmarks/proxy_bench.sh
#
# Settings (environment):
#   GATEWAYD      gatewayd binary to test; unset: build it (Release) in $REPO/build-release with ninja -j1
#   REPS          repetitions, default 3              DURATION   wrk -d per measurement, default 5s
#   WARMUP        discarded first run per column and method, default 1s (doubles as a sanity check)
#   CONNS         wrk -c, default 50                  WRK_THREADS  wrk -t, default 2
#   BODY_BYTES    POST body size, default 10240       ACCESS_LOG  1: gatewayd writes its access log
#   DUT_CPU       CPU of the server under test, 0     LOAD_CPU    CPU of wrk and the backend, 1
#   BASE_PORT     first of 6 loopback ports, 19180    RESULTS_DIR default $REPO/benchmarks/results
#   UNPINNED      1: add two columns without taskset for gatewayd and wrk (the backend stays on LOAD_CPU):
#                 "gatewayd-unpinned" (1 io thread) and "gatewayd-2t" (2 io threads). Default 0.
#
# Needs wrk and nginx (Debian: wrk, nginx-light; installed with apt-get when missing and run as root),
# curl, taskset, pgrep. Everything lives in a temporary directory that is removed at exit, and every
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

readonly BACKEND_PORT=$BASE_PORT
readonly DIRECT_PORT=$((BASE_PORT + 1))
readonly GATEWAY_PORT=$((BASE_PORT + 2))
readonly NGINX_PORT=$((BASE_PORT + 3))
readonly GATEWAY_UNPINNED_PORT=$((BASE_PORT + 4))
readonly GATEWAY_2T_PORT=$((BASE_PORT + 5))
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK

WORK=""                      # temporary directory, removed at exit
declare -A SERVER_PID=()     # name -> PID of every server started here
declare -A COLUMN_PORT=()    # column -> port wrk targets
declare -A COLUMN_DUT=()     # column -> server name whose CPU time is measured
declare -A COLUMN_PINNED=()  # column -> 1 when DUT/wrk are pinned
COLUMNS=()
VERDICTS=()                  # "METHOD: gatewayd/nginx ..." lines, printed at the end
OVERALL=MISS

log() { printf '[proxy_bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------------
# Setup and teardown

cleanup() {
  local name
  for name in "${!SERVER_PID[@]}"; do stop_server "$name"; done
  [ -n "$WORK" ] && rm -rf "$WORK"
  return 0
}

install_tools_if_missing() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
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
  for p in "$BACKEND_PORT" "$DIRECT_PORT" "$GATEWAY_PORT" "$NGINX_PORT" "$GATEWAY_UNPINNED_PORT" "$GATEWAY_2T_PORT"; do
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

start_backend() {  # NAME PORT CPU: the fast backend (200 + small JSON for GET, 204 for POST)
  local name=$1 port=$2 cpu=$3
  # shellcheck disable=SC2016  # $request_method is nginx's, not the shell's
  write_nginx_config "$name" "$port" '
        location / {
            if ($request_method = POST) { return 204; }
            default_type application/json;
            return 200 '"'"'{"status":"success","data":{"resultType":"vector","result":[]}}'"'"';
        }'
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

start_gatewayd() {  # NAME PORT CPU_OR_EMPTY THREADS
  local name=$1 port=$2 cpu=$3 threads=$4 access_log=false conf=$WORK/$1.json
  [ "$ACCESS_LOG" = 1 ] && access_log=true
  cat >"$conf" <<EOF
{
  "server": {"listen": ["127.0.0.1:$port"], "threads": $threads, "drain_timeout_ms": 2000},
  "logging": {"level": "warn", "access_log": $access_log},
  "upstreams": {"backend": {"url": "http://127.0.0.1:$BACKEND_PORT"}},
  "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "backend"}]
}
EOF
  "$GATEWAYD" --config "$conf" --check >/dev/null || die "gatewayd rejects $conf"
  start_server "$name" "$cpu" "$GATEWAYD" --config "$conf"
  wait_listening "$name" "$port"
}

# add_column COLUMN SERVER PORT PINNED
add_column() {
  COLUMNS+=("$1")
  COLUMN_DUT[$1]=$2
  COLUMN_PORT[$1]=$3
  COLUMN_PINNED[$1]=$4
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

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
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

# snapshot_other_cpu FILE: "pid ticks" (utime+stime) of every process outside this script's process tree,
# kernel threads left out. Two snapshots give the CPU that other users of the machine took during a
# measurement: the noise indicator of the report. It is a lower bound: a process that ends between the
# snapshots is not counted (a reaped child's time would land in its parent's cutime all at once, with the
# part spent before the measurement, so cutime is left out too).
snapshot_other_cpu() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v self=$$ '
    {
      pid = $1; rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      parent[pid] = f[2]; ticks[pid] = f[12] + f[13]
    }
    END {
      for (p in parent) {
        q = p; ours = 0
        for (depth = 0; depth < 64 && q > 2; depth++) { if (q == self) { ours = 1; break }; q = parent[q] }
        if (!ours && q != 2 && p != 2) print p, ticks[p]
      }
    }' >"$1"
}

# other_cpu_pct BEFORE AFTER DURATION_US: CPU used by other processes, in % of one core.
other_cpu_pct() {
  awk -v hz="$CLK_TCK" -v d="$3" 'NR == FNR { before[$1] = $2; next }
    { delta = $2 - (($1 in before) ? before[$1] : 0); if (delta > 0) sum += delta }  # new processes count whole
    END { printf "%.0f", (d > 0 ? 100 * sum / hz * 1e6 / d : 0) }' "$1" "$2"
}

# run_wrk COLUMN METHOD DURATION: prints "requests duration_us p50_us p99_us non2xx socket_errors"
run_wrk() {
  local column=$1 method=$2 duration=$3 url="http://127.0.0.1:${COLUMN_PORT[$1]}" out
  local pin=(taskset -c "$LOAD_CPU")
  [ "${COLUMN_PINNED[$column]}" = 1 ] || pin=()
  out=$(BENCH_METHOD=$method BENCH_BODY_BYTES=$BODY_BYTES "${pin[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" \
    -d"$duration" --latency -s "$WORK/bench.lua" "$url" 2>&1) || { echo "$out" >&2; die "wrk failed on $column"; }
  grep '^RESULT ' <<<"$out" | cut -d' ' -f2- || { echo "$out" >&2; die "no RESULT from wrk on $column"; }
}

# check_answers COLUMN: GET must give 200 and POST 204 through every column before it is measured.
check_answers() {
  local column=$1 url="http://127.0.0.1:${COLUMN_PORT[$1]}" get post
  get=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/api/v1/query?query=up" || true)
  post=$(head -c "$BODY_BYTES" /dev/zero | tr '\0' 'x' |
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' --data-binary @- \
      "$url/api/v1/push" || true)
  if [ "$get" != 200 ] || [ "$post" != 204 ]; then
    die "$column answers GET $get (want 200), POST $post (want 204)"
  fi
}

# measure REP COLUMN METHOD: one wrk run, the DUT's CPU time around it; appends a row to $RAW.
measure() {
  local rep=$1 column=$2 method=$3 pid ticks_before ticks_after result
  local requests duration_us p50 p99 non2xx sock_err other
  pid=${SERVER_PID[${COLUMN_DUT[$column]}]}
  snapshot_other_cpu "$WORK/other.before"
  ticks_before=$(cpu_ticks "$pid")
  result=$(run_wrk "$column" "$method" "$DURATION")
  ticks_after=$(cpu_ticks "$pid")
  snapshot_other_cpu "$WORK/other.after"
  read -r requests duration_us p50 p99 non2xx sock_err <<<"$result"
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
    check_answers "$column"
    for method in GET POST; do
      result=$(run_wrk "$column" "$method" "$WARMUP")
      bad=$(awk '{print $5 + $6}' <<<"$result")
      [ "$bad" = 0 ] || die "$column $method warm-up: $bad non-2xx answers or socket errors"
    done
  done
}

run_all_reps() {
  local rep method column
  printf 'rep\tcolumn\tmethod\trps\tp50_us\tp99_us\tcpu_us_per_req\tdut_cpu_pct\tbad\trequests\tother_cpu_pct\n' >"$RAW"
  for rep in $(seq 1 "$REPS"); do
    for method in GET POST; do
      for column in "${COLUMNS[@]}"; do measure "$rep" "$column" "$method"; done
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
  git -C "$REPO" diff --quiet HEAD -- lib include apps 2>/dev/null || commit="$commit (lib/include/apps modified)"
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- machine: $(nproc) CPUs, $cpu_model, kernel $(uname -r), load average at start: $LOAD_AT_START"
  echo "- gatewayd: \`$GATEWAYD\`, commit $commit, access log $([ "$ACCESS_LOG" = 1 ] && echo on || echo off)"
  echo "- peers: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "- load: wrk -t$WRK_THREADS -c$CONNS -d$DURATION, $REPS reps interleaved, medians reported;" \
    "POST body $BODY_BYTES bytes"
  echo "- pinning: server under test on CPU $DUT_CPU, wrk and backend on CPU $LOAD_CPU (taskset)"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

write_report() {
  local method column rps p50 p99 cpu dut bad other verdict r_rps r_p99 r_cpu all_pass=1
  local -A gw=() ng=()
  {
    echo "# gatewayd vs nginx: reverse-proxy benchmark"
    echo
    machine_info
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
    echo "Overall: **$([ "$all_pass" = 1 ] && echo PASS || echo MISS)**"
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
  REPORT=$RESULTS_DIR/$(date +%Y-%m-%d)-proxy.md
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)

  install_tools_if_missing
  require_tools
  build_gatewayd_if_needed
  check_ports_free
  write_wrk_script
  start_all_servers
  warm_up_and_check
  run_all_reps
  write_report
  cat "$REPORT"
  log "report written to $REPORT"
  printf '%s\n' "${VERDICTS[@]}"
  echo "$OVERALL (goal: gatewayd req/s >= 1.0x nginx and p99 <= 1.2x nginx, GET and POST)"
}

main "$@"
