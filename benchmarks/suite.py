#!/usr/bin/env python3
"""The obsgw benchmark suite: gatewayd next to nginx and HAProxy doing the same jobs, in one run, on loopback.

Run it as `benchmarks/suite.sh` (installs the tools, builds Release, then runs this file) or directly with
`python3 benchmarks/suite.py` against existing binaries. Python 3 standard library only.

Layout (two cores are enough; everything listens on 127.0.0.1, ports BASE_PORT .. BASE_PORT+99):
  DUT_CPU  (0)  the server under test (DUT), alone, under taskset: one process with one worker or io thread
  LOAD_CPU (1)  wrk (-t2), the backend (nginx, 1 worker: GET -> 200 + a small JSON body, POST -> 204) and
                redis-server
Columns (what wrk talks to; each its own process, started once and measured in every scenario):
  direct                  a second, identical backend: the ceiling of wrk and the backend on this machine
  nginx, haproxy          plain reverse proxies with keep-alive pools to the backend
  nginx-authreq           nginx + auth_request to a syntactic bearer check that lives in the backend nginx
  haproxy-jwt-rs256/es256 HAProxy's native jwt_verify (public key PEM) plus iss/aud/exp, every request verified
  gatewayd                plain proxy, access log off
  gatewayd-full           jwt (cached token) + tenant from the `tenant` claim + rate limits per IP and per tenant
                          (in process, never refusing) + HMAC signing + access log to a file
  gatewayd-jwt-cached     jwt alone, the same token on every request (the cache hit)
  gatewayd-jwt-new-rs256/es256  a different token on every request (restarted before every measurement)
  gatewayd-limits, gatewayd-limits-redis  per-IP + per-tenant limits in process / in redis-server
  gatewayd-sign           the sign policy alone
Scenarios: GET, POST of 10 KB and of 100 KB (answered 204), each with 50 and with 500 connections (wrk -t2).

Measured per measurement (wrk -d DURATION): req/s, p50 and p99 latency (wrk --latency), the DUT's CPU time per
request (utime+stime of its process tree from /proc, before and after), how busy the DUT was, and the CPU other
processes of the machine took meanwhile (noise). Reps are interleaved (rep 1 of every column and scenario, then
rep 2, ...) and medians reported with ratios against plain gatewayd and every peer. Before a column is measured
it must pass sanity checks (2xx for a valid request, 401 without a token or with a forged one where it
authenticates, signatures recomputed here); a column that fails is skipped and reported. Gatewayd columns'
/metrics counters are read around every measurement to prove which path ran (signature checks vs cache hits,
Redis round trips, refusals). Then: scale (memory of 10,000 idle keep-alive connections; 1 vs 2 io threads),
micro-benchmarks (obsgw_micro_bench, openssl speed), the goals of issue 5 as PASS/MISS, and the report.

Output (RESULTS_DIR, default benchmarks/results/<date>-suite/): raw.tsv (one row per measurement), report.md,
throughput.png and cpu.png (gnuplot), scale.tsv, micro.json, openssl-speed.txt.

Code layout, top to bottom: settings; processes and /proc accounting; HTTP helpers; tokens; server configs;
columns; sanity checks; wrk and one measurement; the main loop; scale; micro; statistics and goals; the report
and charts; main().
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import resource
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
WRK_SCRIPT = BENCH_DIR / "tools" / "wrk_load.lua"
JWT_MINT_SOURCE = BENCH_DIR / "tools" / "jwt_mint.cpp"
CLK_TCK = os.sysconf("SC_CLK_TCK")

ISSUER = "https://idp.bench.example"
AUDIENCE = "urn:obsgw"
SIGN_KEY_ID = "bench"
QUERY_PATH = "/api/v1/query?query=up"
PUSH_PATH = "/api/v1/push"
ECHO_PATH = "/bench/echo"  # a backend location that echoes what it received (signature checks, never measured)
FIXED_SERIAL = 10_000_000  # serial of the one token every fixed-token column sends (never in the token files)
LIMIT_RATE = 1e9  # rate limits that never refuse: the cost of deciding is measured

PEER_COLUMNS = ["direct", "nginx", "haproxy", "nginx-authreq", "haproxy-jwt-rs256", "haproxy-jwt-es256"]
GATEWAYD_COLUMNS = ["gatewayd", "gatewayd-full", "gatewayd-jwt-cached", "gatewayd-jwt-new-rs256",
                    "gatewayd-jwt-new-es256", "gatewayd-limits", "gatewayd-limits-redis", "gatewayd-sign"]
ALL_COLUMNS = PEER_COLUMNS + GATEWAYD_COLUMNS
RATIO_BASES = ["gatewayd", "nginx", "haproxy", "nginx-authreq", "haproxy-jwt-rs256", "haproxy-jwt-es256"]

MICRO_FILTER = ("BM_ParseRequestHead|BM_RouterMatch|BM_VerifyNewToken|BM_AuthenticatorCachedToken|"
                "BM_TokenCacheLookup|BM_RateLimitDecision|BM_HmacSha256|BM_SignRequest")


def log(message: str) -> None:
    print(f"[suite {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class SuiteError(Exception):
    """A problem that ends the run (the cleanup still runs)."""


# ---------------------------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class Scenario:
    id: str
    method: str
    body_bytes: int
    conns: int

    @property
    def label(self) -> str:
        what = "GET" if self.method == "GET" else f"POST {self.body_bytes // 1024} KB"
        return f"{what}, {self.conns} conns"


ALL_SCENARIOS = [Scenario(f"{name}-c{conns}", method, size, conns)
                 for name, method, size in (("get", "GET", 0), ("post10k", "POST", 10240), ("post100k", "POST", 102400))
                 for conns in (50, 500)]


@dataclass
class Settings:
    reps: int
    duration: int  # seconds
    warmup: int
    columns: list[str]
    scenarios: list[Scenario]
    base_port: int
    dut_cpu: int
    load_cpu: int
    results_dir: Path
    tokens: int
    tenants: int
    idle_connections: int
    idle_settle: float
    wrk_threads: int
    skip_scale: bool
    skip_micro: bool
    keep: bool
    quick: bool
    gatewayd: Path
    micro_bench: Path


def seconds(text: str) -> int:
    """'5s', '5', '2m' -> seconds (wrk takes whole seconds here)."""
    match = re.fullmatch(r"\s*(\d+)\s*(s|m)?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 5s or 2m)")
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def pick(names: str, known: list[str], what: str) -> list[str]:
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise SystemExit(f"suite.py: unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return [n for n in known if n in chosen]  # the suite's own order


def parse_settings(argv: list[str]) -> Settings:
    env = os.environ.get
    today = datetime.date.today().isoformat()
    p = argparse.ArgumentParser(
        prog="suite.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="gatewayd vs nginx and HAProxy, one run, same pinning (see benchmarks/README.md).",
        epilog="Every option also reads an environment variable (in brackets); the command line wins.\n"
               "Binaries: GATEWAYD (default build-release/apps/gatewayd/gatewayd), MICRO_BENCH (default\n"
               "build-release/benchmarks/obsgw_micro_bench); nginx, haproxy, redis-server, wrk, gnuplot from PATH.\n"
               f"Columns: {', '.join(ALL_COLUMNS)}\n"
               f"Scenarios: {', '.join(s.id for s in ALL_SCENARIOS)}")
    p.add_argument("--reps", type=int, default=int(env("REPS", 3)), help="repetitions, medians reported [REPS] (3)")
    p.add_argument("--duration", type=seconds, default=seconds(env("DURATION", "5s")),
                   help="wrk -d per measurement [DURATION] (5s)")
    p.add_argument("--warmup", type=seconds, default=seconds(env("WARMUP", "1s")),
                   help="discarded wrk run per column and scenario before rep 1 [WARMUP] (1s)")
    p.add_argument("--columns", default=env("COLUMNS", ",".join(ALL_COLUMNS)),
                   help="comma-separated subset of the columns [COLUMNS] (all)")
    p.add_argument("--scenarios", default=env("SCENARIOS", ",".join(s.id for s in ALL_SCENARIOS)),
                   help="comma-separated subset of the scenarios [SCENARIOS] (all)")
    p.add_argument("--base-port", type=int, default=int(env("BASE_PORT", 19300)),
                   help="first of the 100 ports used on 127.0.0.1 [BASE_PORT] (19300)")
    p.add_argument("--dut-cpu", type=int, default=int(env("DUT_CPU", 0)),
                   help="CPU of the server under test [DUT_CPU] (0)")
    p.add_argument("--load-cpu", type=int, default=int(env("LOAD_CPU", 1)),
                   help="CPU of wrk, the backend and redis-server [LOAD_CPU] (1)")
    default_results = BENCH_DIR / "results" / f"{today}-suite"
    p.add_argument("--results-dir", type=Path, default=Path(env("RESULTS_DIR", default_results)),
                   help="where raw.tsv, report.md and the charts go [RESULTS_DIR] (benchmarks/results/<date>-suite; "
                        "-2, -3, ... appended when it already holds a report)")
    p.add_argument("--tokens", type=int, default=int(env("TOKENS", 0)),
                   help="tokens signed per algorithm for the jwt-new columns [TOKENS] (60,000 per second of DURATION)")
    p.add_argument("--tenants", type=int, default=int(env("TENANTS", 1)),
                   help="X-Scope-OrgID values cycled request by request, for the header-keyed tenant limits "
                        "[TENANTS] (1: the fixed token's tenant on every request)")
    p.add_argument("--idle-connections", type=int, default=int(env("IDLE_CONNECTIONS", 10000)),
                   help="idle keep-alive connections of the memory test [IDLE_CONNECTIONS] (10000)")
    p.add_argument("--idle-settle", type=float, default=float(env("IDLE_SETTLE", 25)),
                   help="seconds after the idle connections opened when memory is measured a second time, once "
                        "the memory of the burst that opened them has been freed [IDLE_SETTLE] (25)")
    p.add_argument("--wrk-threads", type=int, default=int(env("WRK_THREADS", 2)), help="wrk -t [WRK_THREADS] (2)")
    p.add_argument("--quick", action="store_true", default=env("QUICK") == "1",
                   help="1 rep x 2 s, warm-up 1 s, fewer tokens: to try the suite out [QUICK=1]")
    p.add_argument("--skip-scale", action="store_true", default=env("SKIP_SCALE") == "1",
                   help="no idle-connection memory test and no io-thread scaling [SKIP_SCALE=1]")
    p.add_argument("--skip-micro", action="store_true", default=env("SKIP_MICRO") == "1",
                   help="no obsgw_micro_bench and openssl speed [SKIP_MICRO=1]")
    p.add_argument("--keep", action="store_true", default=env("KEEP") == "1",
                   help="keep the temporary directory (configs, logs, keys) and print its path [KEEP=1]")
    a = p.parse_args(argv)
    if a.quick:
        a.reps, a.duration, a.warmup = 1, 2, 1
    if a.reps < 1 or a.duration < 1 or a.warmup < 0 or a.wrk_threads < 1 or a.tenants < 1:
        p.error("reps, duration and wrk threads must be at least 1, warm-up at least 0")
    return Settings(
        reps=a.reps, duration=a.duration, warmup=a.warmup,
        columns=pick(a.columns, ALL_COLUMNS, "columns"),
        scenarios=[s for s in ALL_SCENARIOS if s.id in pick(a.scenarios, [s.id for s in ALL_SCENARIOS], "scenarios")],
        base_port=a.base_port, dut_cpu=a.dut_cpu, load_cpu=a.load_cpu,
        results_dir=unused_results_dir(a.results_dir.resolve()),
        tokens=a.tokens or max(20_000, 60_000 * a.duration), tenants=a.tenants,
        idle_connections=a.idle_connections, idle_settle=a.idle_settle, wrk_threads=a.wrk_threads,
        skip_scale=a.skip_scale, skip_micro=a.skip_micro, keep=a.keep, quick=a.quick,
        gatewayd=Path(env("GATEWAYD", REPO / "build-release/apps/gatewayd/gatewayd")).resolve(),
        micro_bench=Path(env("MICRO_BENCH", REPO / "build-release/benchmarks/obsgw_micro_bench")).resolve())


def unused_results_dir(wanted: Path) -> Path:
    """The directory itself, or wanted-2, -3, ... when a report is already there."""
    candidate, n = wanted, 1
    while (candidate / "report.md").exists():
        n += 1
        candidate = wanted.with_name(f"{wanted.name}-{n}")
    return candidate


@dataclass(frozen=True)
class Ports:
    """Every port of the run, as offsets from BASE_PORT."""
    base: int

    @property
    def backend(self) -> int: return self.base

    @property
    def direct(self) -> int: return self.base + 1

    @property
    def redis(self) -> int: return self.base + 2

    def column(self, name: str) -> int: return self.base + 10 + ALL_COLUMNS.index(name)

    def admin(self, name: str) -> int: return self.base + 40 + ALL_COLUMNS.index(name)

    def idle(self, index: int) -> int: return self.base + 70 + index  # memory test servers

    def threads(self, index: int) -> int: return self.base + 80 + index  # io-thread scaling (+ admin at +84..)

    def all(self) -> list[int]: return list(range(self.base, self.base + 100))


# ---------------------------------------------------------------------------------------------------------------
# Processes: every server is started here, recorded by PID, and stopped by that PID.


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    cpu: int | None  # taskset -c CPU, or None: unpinned
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid


class Processes:
    """Starts servers in their foreground mode, each in its own session (Ctrl-C reaches only this script, which
    then stops them one by one), and stops them by PID: SIGTERM, then SIGKILL after 10 s."""

    def __init__(self) -> None:
        self.running: dict[str, Server] = {}

    def start(self, server: Server) -> Server:
        if server.name in self.running:
            raise SuiteError(f"{server.name} is already running")
        argv = (["taskset", "-c", str(server.cpu)] if server.cpu is not None else []) + server.argv
        with open(server.log_path, "ab") as out:
            server.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True, cwd=server.log_path.parent)
        self.running[server.name] = server
        wait_listening(server)
        return server

    def stop(self, server: Server) -> None:
        self.running.pop(server.name, None)
        stop_pid(server.proc)

    def restart(self, server: Server) -> None:
        self.stop(server)
        self.start(server)

    def stop_all(self) -> None:
        for server in list(self.running.values()):
            self.stop(server)


def stop_pid(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"pid {proc.pid} still running {grace:.0f} s after SIGTERM: SIGKILL")
        proc.kill()
        proc.wait()


def run_bounded(argv: list[str], timeout: float, env: dict | None = None) -> tuple[int, str]:
    """Runs a command to its end (at most `timeout` seconds), output captured; stopped by PID on any exit."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        raise SuiteError(f"{' '.join(argv[:3])} ... ran longer than {timeout:.0f} s")
    finally:
        stop_pid(proc)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(server: Server, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if port_open(server.port):
            return
        if server.proc.poll() is not None:
            raise SuiteError(f"{server.name} exited at start:\n{tail(server.log_path)}")
        time.sleep(0.05)
    raise SuiteError(f"{server.name} is not listening on 127.0.0.1:{server.port} after {limit:.0f} s")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def check_ports_free(ports: Ports) -> None:
    busy = []
    for port in ports.all():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    if busy:
        raise SuiteError(f"ports in use: {busy[:10]}{' ...' if len(busy) > 10 else ''}; choose another --base-port")


def raise_fd_limit(needed: int) -> None:
    """Servers inherit this process's limit: lift it to what 10,000 idle connections need on both ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, needed)
    if hard != resource.RLIM_INFINITY and want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# ---------------------------------------------------------------------------------------------------------------
# CPU and memory from /proc


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after "pid (comm) ": index 0 is the state, 1 the parent, 11 utime, 12 stime."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def child_pids(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return children


def tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += child_pids(p)
    return pids


def tree_ticks(pid: int) -> tuple[int, int]:
    """(utime + stime, utime) of a process and its descendants, all threads, in clock ticks."""
    total = user = 0
    for p in tree_pids(pid):
        try:
            f = stat_fields(p)
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
        user += int(f[11])
    return total, user


@dataclass
class CpuSample:
    """Clock ticks at one moment: the machine's busy time, its steal time, and what this suite has used."""
    machine_busy: int  # user + nice + system over every CPU (/proc/stat)
    steal: int  # time the hypervisor gave to other guests
    ours: float  # this script, its live descendants and its reaped children (wrk)


def cpu_sample() -> CpuSample:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSample(int(fields[0]) + int(fields[1]) + int(fields[2]), int(fields[7]),
                     tree_ticks(os.getpid())[0] + (reaped.ru_utime + reaped.ru_stime) * CLK_TCK)


def noise_ticks(before: CpuSample, after: CpuSample) -> tuple[float, int]:
    """(CPU used by everything outside the suite, steal) between two samples. Short-lived processes of other
    users count too; the two clocks are sampled differently, so a few percent either way is rounding."""
    other = (after.machine_busy - before.machine_busy) - (after.ours - before.ours)
    return max(0.0, other), after.steal - before.steal


def tree_memory_kib(pid: int) -> tuple[int, int | None]:
    """(RSS, PSS) of a process tree in KiB; PSS is None where smaps_rollup is not readable."""
    rss, pss = 0, 0
    for p in tree_pids(pid):
        rss += status_kib(Path(f"/proc/{p}/status"), "VmRSS")
        try:
            pss = None if pss is None else pss + status_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss", strict=True)
        except (OSError, KeyError):
            pss = None
    return rss, pss


def status_kib(path: Path, key: str, strict: bool = False) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    if strict:
        raise KeyError(key)
    return 0


def slab_object_bytes(cache: str) -> int | None:
    """Object size of a kernel slab cache (/proc/slabinfo, readable by root), e.g. "TCP": one per TCP socket."""
    try:
        for line in Path("/proc/slabinfo").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] == cache:
                return int(parts[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def kernel_tcp_pages() -> int:
    """Pages of TCP socket buffers of the whole machine (/proc/net/sockstat, `mem`)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            parts = line.split()
            return int(parts[parts.index("mem") + 1])
    return 0


# ---------------------------------------------------------------------------------------------------------------
# HTTP helpers (sanity checks and /metrics)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def http_call(port: int, method: str = "GET", path: str = QUERY_PATH, headers: dict | None = None,
              body: bytes | None = None) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    except (OSError, http.client.HTTPException) as e:
        return Answer(0, {}, str(e).encode())
    finally:
        conn.close()


def read_counters(admin_port: int) -> dict[str, float]:
    """The /metrics counters that prove which path a gatewayd column took (a freshly started gatewayd may open
    its admin listener a moment after its main one)."""
    for _ in range(50):
        answer = http_call(admin_port, path="/metrics")
        if answer.status == 200:
            break
        time.sleep(0.1)
    else:
        raise SuiteError(f"cannot read /metrics on port {admin_port}: {answer.status or answer.body.decode()}")
    values: dict[str, float] = {}
    for line in answer.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)

    def total(name: str) -> float:
        return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))

    return {"verified": values.get("obsgw_jwt_verified_total", 0.0),
            "cache_hits": values.get('obsgw_token_cache_lookups_total{cache="jwt",result="hit"}', 0.0),
            "cache_misses": values.get('obsgw_token_cache_lookups_total{cache="jwt",result="miss"}', 0.0),
            "store_trips": values.get("obsgw_rate_limit_store_duration_seconds_count", 0.0),
            "store_errors": total("obsgw_rate_limit_store_errors_total"),
            "rate_limited": total("obsgw_rate_limited_total"),
            "log_dropped": total("obsgw_log_lines_dropped_total")}


def counter_deltas(before: dict, after: dict) -> dict[str, int]:
    return {k: int(after[k] - before[k]) for k in before}


# ---------------------------------------------------------------------------------------------------------------
# Tokens: keys, JWK Sets and PEMs, signed by benchmarks/tools/jwt_mint.cpp (compiled into the temporary directory)


@dataclass
class Tokens:
    dir: Path
    fixed: dict[str, str] = field(default_factory=dict)  # alg -> the token every fixed-token column sends
    expired: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # alg -> prefix of the per-wrk-thread token files
    minted: int = 0
    mint_seconds: float = 0.0

    def jwks(self, alg: str) -> Path: return self.dir / f"{alg.lower()}.jwks.json"

    def public_pem(self, alg: str) -> Path: return self.dir / f"{alg.lower()}.pub.pem"

    def private_pem(self, alg: str) -> Path: return self.dir / f"{alg.lower()}.key.pem"

    def size(self, alg: str) -> int: return len(self.fixed[alg])


def compile_jwt_mint(tmp: Path) -> Path:
    binary = tmp / "jwt_mint"
    code, out = run_bounded(["g++", "-O2", "-std=c++17", "-pthread", "-o", str(binary), str(JWT_MINT_SOURCE),
                             "-lcrypto"], timeout=300)
    if code != 0:
        raise SuiteError(f"cannot compile {JWT_MINT_SOURCE} (g++ and libssl-dev are needed):\n{out}")
    return binary


def mint(binary: Path, tokens: Tokens, alg: str, first: int, count: int, slices: int, out: Path, exp: int) -> None:
    code, text = run_bounded([str(binary), "sign", str(tokens.private_pem(alg)), alg, ISSUER, AUDIENCE, str(exp),
                              str(first), str(count), str(slices), str(out)], timeout=3600)
    if code != 0:
        raise SuiteError(f"jwt_mint sign failed: {text}")


def prepare_tokens(tmp: Path, count: int, slices: int, need_files: bool) -> Tokens:
    """Keys, the fixed and expired tokens, and (when a jwt-new column runs) `count` tokens per algorithm."""
    binary = compile_jwt_mint(tmp)
    tokens = Tokens(tmp / "jwt")
    tokens.dir.mkdir(mode=0o700)
    code, out = run_bounded([str(binary), "keys", str(tokens.dir)], timeout=120)
    if code != 0:
        raise SuiteError(f"jwt_mint keys failed: {out}")
    now = int(time.time())
    for alg in ("RS256", "ES256"):
        for kind, exp, target in (("fixed", now + 7 * 86400, tokens.fixed), ("expired", now - 3600, tokens.expired)):
            path = tokens.dir / f"{alg.lower()}.{kind}"
            mint(binary, tokens, alg, FIXED_SERIAL, 1, 0, path, exp)
            target[alg] = path.read_text().strip()
    if need_files:
        started = time.monotonic()
        log(f"signing {count:,} RS256 and {count:,} ES256 tokens on {os.cpu_count()} cores (RSA signing takes a while)")
        for alg in ("RS256", "ES256"):
            prefix = tokens.dir / f"{alg.lower()}.tokens"
            mint(binary, tokens, alg, 0, count, slices, prefix, now + 7 * 86400)
            tokens.files[alg] = prefix
        tokens.minted, tokens.mint_seconds = count, time.monotonic() - started
        log(f"tokens ready in {tokens.mint_seconds:.0f} s")
    return tokens


def forged(token: str) -> str:
    """The same header and claims with one character of the signature changed."""
    head, _, sig = token.rpartition(".")
    middle = len(sig) // 2
    return f"{head}.{sig[:middle]}{'A' if sig[middle] != 'A' else 'B'}{sig[middle + 1:]}"


def tenant_of(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["tenant"]


# ---------------------------------------------------------------------------------------------------------------
# Server configurations


@dataclass
class Context:
    """What every step of a run shares."""
    settings: Settings
    tmp: Path
    ports: Ports
    procs: Processes
    tokens: Tokens | None = None
    sign_secret: Path | None = None
    backend: Server | None = None
    redis: Server | None = None
    programs: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # skipped columns, failed checks, flags: end up in the report


def nginx_config(dir: Path, port: int, server_body: str, http_extra: str = "") -> str:
    """One worker; every writable path inside `dir`; sized for 10,000 idle connections and 100 KB bodies kept in
    memory."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return f"""worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {min(16384, nofile - 64)}; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_max_body_size 4m;
    client_body_buffer_size 128k;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{http_extra}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
{server_body}
    }}
}}
"""


ECHO_FIELDS = r"\n".join(f"{name}=${variable}" for name, variable in [
    ("method", "request_method"), ("target", "request_uri"), ("ts", "http_x_gateway_timestamp"),
    ("key_id", "http_x_gateway_key_id"), ("signed", "http_x_gateway_signed_headers"),
    ("sha256", "http_x_gateway_content_sha256"), ("signature", "http_x_gateway_signature"),
    ("x-scope-orgid", "http_x_scope_orgid"), ("content-type", "http_content_type"),
    ("authorization", "http_authorization")]) + r"\n"

BACKEND_LOCATIONS = r"""
        location / {
            if ($request_method = POST) { return 204; }
            default_type application/json;
            return 200 '{"status":"success","data":{"resultType":"vector","result":[]}}';
        }
        # nginx-authreq's auth service: a syntactic bearer check, no cryptography.
        location = /_authcheck {
            if ($http_authorization !~ "^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$") { return 401; }
            return 204;
        }
        # What a request carried when it got here: the sanity checks recompute signatures from it.
        location = /bench/echo {
            default_type text/plain;
            return 200 "%s";
        }""" % ECHO_FIELDS


def upstream_block(name: str, port: int) -> str:
    return f"    upstream {name} {{ server 127.0.0.1:{port}; keepalive 1024; keepalive_requests 1000000; }}"


PROXY_TO_BACKEND = """            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";"""


def nginx_proxy_body() -> str:
    return f"        location / {{\n{PROXY_TO_BACKEND}\n        }}"


def nginx_authreq_body() -> str:
    return f"""        location / {{
            auth_request /_auth;
{PROXY_TO_BACKEND}
        }}
        location = /_auth {{
            internal;
            proxy_pass http://authsvc/_authcheck;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""


def nginx_server(ctx: Context, name: str, port: int, cpu: int | None, body: str, http_extra: str = "") -> Server:
    dir = ctx.tmp / "nginx" / name
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "nginx.conf").write_text(nginx_config(dir, port, body, http_extra))
    nginx = ctx.programs["nginx"]
    return Server(name, [nginx, "-p", str(dir), "-c", str(dir / "nginx.conf"), "-e", str(dir / "error.log")],
                  port, cpu, ctx.tmp / "logs" / f"{name}.log")


def haproxy_jwt_rules(alg: str, public_pem: Path) -> str:
    """Native JWT validation: algorithm, issuer, audience and expiry checked, then the signature, on every
    request (HAProxy keeps no verification cache); the tenant claim goes upstream."""
    return f"""    http-request set-var(txn.now) date()
    http-request set-var(txn.jwt) http_auth_bearer
    http-request deny deny_status 401 unless {{ var(txn.jwt) -m found }}
    http-request set-var(txn.alg) var(txn.jwt),jwt_header_query('$.alg')
    http-request deny deny_status 401 unless {{ var(txn.alg) -m str {alg} }}
    http-request deny deny_status 401 unless {{ var(txn.jwt),jwt_payload_query('$.iss') -m str {ISSUER} }}
    http-request deny deny_status 401 unless {{ var(txn.jwt),jwt_payload_query('$.aud') -m str {AUDIENCE} }}
    http-request set-var(txn.ttl) var(txn.jwt),jwt_payload_query('$.exp','int'),sub(txn.now)
    http-request deny deny_status 401 unless {{ var(txn.ttl) -m int gt 0 }}
    http-request deny deny_status 401 unless {{ var(txn.jwt),jwt_verify(txn.alg,"{public_pem}") -m int 1 }}
    http-request set-header X-Scope-OrgID %[var(txn.jwt),jwt_payload_query('$.tenant')]
"""


def haproxy_maxconn() -> int:
    """HAProxy reserves two descriptors per connection (client and server side) and will not start when the
    descriptor limit it inherits is lower."""
    return min(20000, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 2)


def haproxy_server(ctx: Context, name: str, port: int, cpu: int | None, rules: str = "") -> Server:
    config = f"""global
    nbthread 1
    maxconn {haproxy_maxconn()}
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
    http-reuse always
frontend clients
    bind 127.0.0.1:{port}
{rules}    default_backend app
backend app
    server backend 127.0.0.1:{ctx.ports.backend}
"""
    path = ctx.tmp / f"{name}.haproxy.cfg"
    path.write_text(config)
    return Server(name, [ctx.programs["haproxy"], "-db", "-f", str(path)], port, cpu, ctx.tmp / "logs" / f"{name}.log")


def jwt_policy(ctx: Context, alg: str) -> dict:
    return {"type": "jwt", "providers": [{"issuer": ISSUER, "jwks_file": str(ctx.tokens.jwks(alg)),
                                          "audiences": [AUDIENCE], "token_type": "at+jwt"}]}


def limits_policy(store: str, tenant_key: str) -> dict:
    """Per client IP and per tenant, limits that never refuse. Without authentication the tenant is the
    X-Scope-OrgID header (tenant_key "header"); behind the jwt and tenant policies it is the resolved tenant."""
    tenant_limit = {"name": "per-tenant", "key": tenant_key, "rate": LIMIT_RATE, "per": "second"}
    if tenant_key == "header":
        tenant_limit["header"] = "X-Scope-OrgID"
    policy = {"type": "rate_limit",
              "limits": [{"name": "per-ip", "key": "client_ip", "rate": LIMIT_RATE, "per": "second"}, tenant_limit]}
    if store == "redis":
        policy["store"] = "redis"
    return policy


def sign_policy(ctx: Context) -> dict:
    return {"type": "sign", "key_id": SIGN_KEY_ID, "secret_file": str(ctx.sign_secret),
            "headers": ["x-scope-orgid", "content-type"]}


def full_pipeline(ctx: Context) -> list[dict]:
    return [jwt_policy(ctx, "RS256"), {"type": "tenant", "claim": "tenant"}, limits_policy("local", "tenant"),
            sign_policy(ctx)]


def gatewayd_server(ctx: Context, name: str, port: int, admin_port: int, cpu: int | None, policies: list[dict],
                    threads: int = 1, access_log: bool = False, redis: bool = False) -> Server:
    config = {
        "server": {"listen": [f"127.0.0.1:{port}"], "admin_listen": f"127.0.0.1:{admin_port}", "threads": threads,
                   "max_connections": 20000, "drain_timeout_ms": 2000, "timeouts": {"idle_ms": 300000}},
        "logging": {"level": "warn", "access_log": access_log},
        "upstreams": {"backend": {"url": f"http://127.0.0.1:{ctx.ports.backend}", "max_idle_connections": 1024}},
        "routes": [{"name": "all", "match": {"path_prefix": "/"}, "upstream": "backend", "policies": policies}],
    }
    if redis:
        config["redis"] = {"address": f"127.0.0.1:{ctx.ports.redis}", "timeout_ms": 50}
    path = ctx.tmp / f"{name}.json"
    path.write_text(json.dumps(config, indent=2))
    code, out = run_bounded([str(ctx.settings.gatewayd), "--config", str(path), "--check"], timeout=30)
    if code != 0:
        raise SuiteError(f"gatewayd rejects {path}:\n{out}")
    return Server(name, [str(ctx.settings.gatewayd), "--config", str(path)], port, cpu,
                  ctx.tmp / "logs" / f"{name}.log")


def start_backend(ctx: Context) -> None:
    ctx.backend = ctx.procs.start(nginx_server(ctx, "backend", ctx.ports.backend, ctx.settings.load_cpu,
                                               BACKEND_LOCATIONS))


def start_redis(ctx: Context) -> None:
    dir = ctx.tmp / "redis"
    dir.mkdir(exist_ok=True)
    server = Server("redis", [ctx.programs["redis-server"], "--port", str(ctx.ports.redis), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(dir), "--daemonize", "no",
                              "--logfile", ""], ctx.ports.redis, ctx.settings.load_cpu, ctx.tmp / "logs" / "redis.log")
    ctx.redis = ctx.procs.start(server)


# ---------------------------------------------------------------------------------------------------------------
# Columns


@dataclass
class Column:
    name: str
    program: str  # what must be installed
    description: str
    make_server: Callable[[], Server]
    port: int
    alg: str = "RS256"  # the fixed token it gets (every column sends one: same bytes on the wire)
    new_tokens: bool = False  # a different token on every request from the token files
    auth: str = "none"  # "none", "syntactic" (401 without a token or a malformed one), "verify" (+ forged, expired)
    admin_port: int | None = None  # gatewayd's /metrics
    checks: tuple[str, ...] = ()  # extra sanity checks: sign, tenant, ratelimit, redis, cached
    pinned: bool = True
    server: Server | None = None

    @property
    def restart_each_time(self) -> bool:
        return self.new_tokens  # a fresh process: no token is seen twice by one gatewayd


def define_columns(ctx: Context) -> dict[str, Column]:
    """Every column the suite knows, in report order."""
    s, p = ctx.settings, ctx.ports
    dut = s.dut_cpu
    backend_pool = upstream_block("backend", p.backend)

    def gw(name: str, policies: Callable[[], list[dict]], **kw) -> Callable[[], Server]:
        return lambda: gatewayd_server(ctx, name, p.column(name), p.admin(name), dut, policies(), **kw)

    return {c.name: c for c in [
        Column("direct", "nginx", "wrk → a second, identical backend nginx on DUT_CPU (the ceiling)",
               lambda: nginx_server(ctx, "direct", p.direct, dut, BACKEND_LOCATIONS), p.direct),
        Column("nginx", "nginx", "nginx `proxy_pass`, upstream keep-alive pool, HTTP/1.1",
               lambda: nginx_server(ctx, "nginx", p.column("nginx"), dut, nginx_proxy_body(), backend_pool),
               p.column("nginx")),
        Column("haproxy", "haproxy", "HAProxy `mode http`, `http-reuse always`, `nbthread 1`",
               lambda: haproxy_server(ctx, "haproxy", p.column("haproxy"), dut), p.column("haproxy")),
        Column("nginx-authreq", "nginx", "nginx + `auth_request` to a syntactic bearer check in the backend nginx "
               "(keep-alive; no cryptography; the check's CPU is on LOAD_CPU)",
               lambda: nginx_server(ctx, "nginx-authreq", p.column("nginx-authreq"), dut, nginx_authreq_body(),
                                    backend_pool + "\n" + upstream_block("authsvc", p.backend)),
               p.column("nginx-authreq"), auth="syntactic"),
        Column("haproxy-jwt-rs256", "haproxy", "HAProxy `jwt_verify` RS256 (public key PEM) + iss/aud/exp, every "
               "request",
               lambda: haproxy_server(ctx, "haproxy-jwt-rs256", p.column("haproxy-jwt-rs256"), dut,
                                      haproxy_jwt_rules("RS256", ctx.tokens.public_pem("RS256"))),
               p.column("haproxy-jwt-rs256"), auth="verify"),
        Column("haproxy-jwt-es256", "haproxy", "HAProxy `jwt_verify` ES256 (public key PEM) + iss/aud/exp, every "
               "request",
               lambda: haproxy_server(ctx, "haproxy-jwt-es256", p.column("haproxy-jwt-es256"), dut,
                                      haproxy_jwt_rules("ES256", ctx.tokens.public_pem("ES256"))),
               p.column("haproxy-jwt-es256"), alg="ES256", auth="verify"),
        Column("gatewayd", "gatewayd", "gatewayd, 1 io thread, plain proxy, access log off",
               gw("gatewayd", lambda: []), p.column("gatewayd"), admin_port=p.admin("gatewayd")),
        Column("gatewayd-full", "gatewayd", "the full pipeline: `jwt` (JWK Set file, cached token) + `tenant` from the "
               "`tenant` claim + `rate_limit` per IP and per tenant (in process) + `sign` + access log to a file",
               gw("gatewayd-full", lambda: full_pipeline(ctx), access_log=True), p.column("gatewayd-full"),
               auth="verify", admin_port=p.admin("gatewayd-full"), checks=("sign", "tenant", "ratelimit", "cached")),
        Column("gatewayd-jwt-cached", "gatewayd", "`jwt` alone, the same RS256 token on every request (cache hit)",
               gw("gatewayd-jwt-cached", lambda: [jwt_policy(ctx, "RS256")]), p.column("gatewayd-jwt-cached"),
               auth="verify", admin_port=p.admin("gatewayd-jwt-cached"), checks=("cached",)),
        Column("gatewayd-jwt-new-rs256", "gatewayd", "`jwt`, a different RS256 token on every request (restarted "
               "before every measurement)", gw("gatewayd-jwt-new-rs256", lambda: [jwt_policy(ctx, "RS256")]),
               p.column("gatewayd-jwt-new-rs256"), new_tokens=True, auth="verify",
               admin_port=p.admin("gatewayd-jwt-new-rs256")),
        Column("gatewayd-jwt-new-es256", "gatewayd", "`jwt`, a different ES256 token on every request (restarted "
               "before every measurement)", gw("gatewayd-jwt-new-es256", lambda: [jwt_policy(ctx, "ES256")]),
               p.column("gatewayd-jwt-new-es256"), alg="ES256", new_tokens=True, auth="verify",
               admin_port=p.admin("gatewayd-jwt-new-es256")),
        Column("gatewayd-limits", "gatewayd", "`rate_limit` per IP and per tenant (`X-Scope-OrgID` header), in process",
               gw("gatewayd-limits", lambda: [limits_policy("local", "header")]), p.column("gatewayd-limits"),
               admin_port=p.admin("gatewayd-limits"), checks=("ratelimit",)),
        Column("gatewayd-limits-redis", "redis-server", "the same limits with `\"store\": \"redis\"` (redis-server on "
               "LOAD_CPU, one EVALSHA per request)",
               gw("gatewayd-limits-redis", lambda: [limits_policy("redis", "header")], redis=True),
               p.column("gatewayd-limits-redis"), admin_port=p.admin("gatewayd-limits-redis"),
               checks=("ratelimit", "redis")),
        Column("gatewayd-sign", "gatewayd", "`sign` alone: HMAC-SHA256 over x-scope-orgid, content-type and the "
               "body's SHA-256", gw("gatewayd-sign", lambda: [sign_policy(ctx)]), p.column("gatewayd-sign"),
               admin_port=p.admin("gatewayd-sign"), checks=("sign",)),
    ]}


def find_programs(settings: Settings) -> dict[str, str | None]:
    sbin = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    programs = {name: shutil.which(name, path=sbin) for name in
                ("nginx", "haproxy", "redis-server", "wrk", "gnuplot", "openssl", "g++", "taskset", "git")}
    programs["gatewayd"] = str(settings.gatewayd) if os.access(settings.gatewayd, os.X_OK) else None
    return programs


def available_columns(ctx: Context) -> list[Column]:
    """The chosen columns whose programs are installed; the others are noted for the report."""
    known = define_columns(ctx)
    chosen = []
    for name in ctx.settings.columns:
        column = known[name]
        if ctx.programs.get(column.program) is None:
            ctx.notes.append(f"`{name}` skipped: `{column.program}` is not installed")
            log(f"skipping {name}: {column.program} not installed")
            continue
        chosen.append(column)
    return chosen


# ---------------------------------------------------------------------------------------------------------------
# Sanity checks, before a column is measured


def request_headers(ctx: Context, token: str | None, tenant: str | None = None) -> dict[str, str]:
    headers = {"User-Agent": "obsgw-suite"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    return headers


def push_body(size: int) -> bytes:
    return b"[" + b" " * (size - 2) + b"]"


def column_token(ctx: Context, column: Column) -> str:
    if column.new_tokens:  # the first of wrk thread 0's slice
        prefix = ctx.tokens.files[column.alg]
        with prefix.with_name(prefix.name + ".0").open() as slice_0:
            return slice_0.readline().strip()
    return ctx.tokens.fixed[column.alg]


def expect(problems: list[str], what: str, answer: Answer, status: int) -> None:
    if answer.status != status:
        problems.append(f"{what}: {answer.status or answer.body.decode(errors='replace')} (want {status})")


def check_column(ctx: Context, column: Column) -> list[str]:
    """Problems found; an empty list means the column may be measured."""
    problems: list[str] = []
    port, token = column.port, column_token(ctx, column)
    valid = request_headers(ctx, token, tenant_of(token))
    expect(problems, "GET with a valid token", http_call(port, headers=valid), 200)
    expect(problems, "POST 10 KB with a valid token",
           http_call(port, "POST", PUSH_PATH, valid | {"Content-Type": "application/json"}, push_body(10240)), 204)
    if column.auth in ("syntactic", "verify"):
        expect(problems, "GET without a token", http_call(port, headers=request_headers(ctx, None)), 401)
        expect(problems, "GET with a malformed token", http_call(port, headers=request_headers(ctx, "not-a-jwt")), 401)
    if column.auth == "verify":
        expect(problems, "GET with a forged signature",
               http_call(port, headers=request_headers(ctx, forged(token))), 401)
        expect(problems, "GET with an expired token",
               http_call(port, headers=request_headers(ctx, ctx.tokens.expired[column.alg])), 401)
    for check in column.checks:
        problems += EXTRA_CHECKS[check](ctx, column, token)
    return problems


def echo(ctx: Context, column: Column, method: str, token: str, body: bytes | None) -> tuple[dict[str, str], int]:
    headers = request_headers(ctx, token, "spoofed-tenant")
    if body is not None:
        headers["Content-Type"] = "application/json"
    answer = http_call(column.port, method, f"{ECHO_PATH}?check=1", headers, body)
    fields = dict(line.split("=", 1) for line in answer.body.decode(errors="replace").splitlines() if "=" in line)
    return fields, answer.status


def signature_problems(fields: dict[str, str], body: bytes, secret: bytes) -> list[str]:
    """Recomputes the X-Gateway-Signature the backend received (the canonical string of
    include/obsgw/request_signature.hpp, as in the README's verifier)."""
    digest = hashlib.sha256(body).hexdigest()
    if fields.get("sha256") != digest:
        return [f"X-Gateway-Content-SHA256 {fields.get('sha256')!r}, the body's is {digest}"]
    if fields.get("key_id") != SIGN_KEY_ID:
        return [f"X-Gateway-Key-Id {fields.get('key_id')!r}, want {SIGN_KEY_ID}"]
    names = [n for n in fields.get("signed", "").split(";") if n]
    lines = ["OBSGW-HMAC-SHA256", fields.get("ts", ""), fields["key_id"], fields.get("method", ""),
             fields.get("target", ""), ";".join(names)]
    lines += [f"{n}:{fields.get(n, '').strip()}" for n in names]
    lines.append(digest)
    mac = "sha256=" + hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(mac, fields.get("signature", "")):
        return [f"X-Gateway-Signature {fields.get('signature')!r}, recomputed {mac}"]
    if abs(time.time() - int(fields.get("ts") or 0)) > 300:
        return [f"X-Gateway-Timestamp {fields.get('ts')!r} is not now"]
    return []


def check_sign(ctx: Context, column: Column, token: str) -> list[str]:
    problems, secret = [], ctx.sign_secret.read_bytes()
    for method, body in (("GET", None), ("POST", push_body(10240))):
        fields, status = echo(ctx, column, method, token, body)
        if status != 200:
            problems.append(f"{method} {ECHO_PATH}: {status}")
            continue
        problems += [f"signature of a {method}: {p}" for p in signature_problems(fields, body or b"", secret)]
        if fields.get("signed") != "x-scope-orgid;content-type":
            problems.append(f"{method}: signed headers {fields.get('signed')!r}")
    return problems


def check_tenant(ctx: Context, column: Column, token: str) -> list[str]:
    """The tenant comes from the token's claim, never from the client's X-Scope-OrgID; the token is not forwarded."""
    fields, _ = echo(ctx, column, "GET", token, None)
    problems = []
    if fields.get("x-scope-orgid") != tenant_of(token):
        problems.append(f"the backend got X-Scope-OrgID {fields.get('x-scope-orgid')!r}, "
                        f"the claim is {tenant_of(token)}")
    if fields.get("authorization"):
        problems.append("the token was forwarded to the backend")
    return problems


def check_ratelimit(ctx: Context, column: Column, token: str) -> list[str]:
    answer = http_call(column.port, headers=request_headers(ctx, token, tenant_of(token)))
    return [] if "ratelimit-policy" in answer.headers else ["no RateLimit-Policy header: is the limiter running?"]


def counters_over_requests(ctx: Context, column: Column, token: str, count: int) -> dict[str, int]:
    """The gatewayd's /metrics counters moved by `count` requests carrying `token`."""
    before = read_counters(column.admin_port)
    for _ in range(count):
        http_call(column.port, headers=request_headers(ctx, token, tenant_of(token)))
    return counter_deltas(before, read_counters(column.admin_port))


def check_redis(ctx: Context, column: Column, token: str) -> list[str]:
    d = counters_over_requests(ctx, column, token, 3)
    if d["store_trips"] < 3 or d["store_errors"]:
        return [f"3 requests made {d['store_trips']} Redis round trips and {d['store_errors']} store errors"]
    return []


def check_cached(ctx: Context, column: Column, token: str) -> list[str]:
    d = counters_over_requests(ctx, column, token, 3)
    if d["cache_hits"] < 3 or d["verified"]:
        return [f"a known token: {d['cache_hits']} cache hits and {d['verified']} signature checks for 3 requests"]
    return []


EXTRA_CHECKS: dict[str, Callable[[Context, Column, str], list[str]]] = {
    "sign": check_sign, "tenant": check_tenant, "ratelimit": check_ratelimit, "redis": check_redis,
    "cached": check_cached}


# ---------------------------------------------------------------------------------------------------------------
# wrk and one measurement


@dataclass
class WrkResult:
    requests: int
    duration_us: int
    p50_us: int
    p99_us: int
    non2xx: int
    socket_errors: int
    wraps: int

    @property
    def rps(self) -> float:
        return self.requests * 1e6 / self.duration_us if self.duration_us else 0.0


def run_wrk(ctx: Context, column: Column, scenario: Scenario, duration: int) -> WrkResult:
    s = ctx.settings
    env = dict(os.environ, BENCH_METHOD=scenario.method, BENCH_BODY_BYTES=str(scenario.body_bytes),
               BENCH_TENANTS=str(s.tenants), BENCH_TOKEN="", BENCH_TOKEN_FILE="",
               BENCH_TENANT=tenant_of(ctx.tokens.fixed[column.alg]))
    if column.new_tokens:
        env["BENCH_TOKEN_FILE"] = str(ctx.tokens.files[column.alg])
    else:
        env["BENCH_TOKEN"] = ctx.tokens.fixed[column.alg]
    argv = [ctx.programs["wrk"], f"-t{s.wrk_threads}", f"-c{scenario.conns}", f"-d{duration}s", "--timeout", "5s",
            "--latency", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{column.port}"]
    if column.pinned:
        argv = ["taskset", "-c", str(s.load_cpu)] + argv
    code, out = run_bounded(argv, timeout=duration + 60, env=env)
    line = next((l for l in out.splitlines() if l.startswith("SUITE-RESULT ")), None)
    if code != 0 or line is None:
        raise SuiteError(f"wrk failed on {column.name} ({scenario.id}):\n{out}")
    return WrkResult(*(int(v) for v in line.split()[1:]))


RAW_FIELDS = ["rep", "column", "scenario", "method", "body_bytes", "conns", "rps", "p50_us", "p99_us", "requests",
              "duration_us", "non2xx", "socket_errors", "cpu_us_per_req", "user_us_per_req", "dut_busy_pct",
              "other_cpu_pct", "steal_pct", "token_wraps", "verified", "cache_hits", "cache_misses", "store_trips",
              "store_errors", "rate_limited", "log_dropped", "redis_cpu_us_per_req", "flags"]


def measure(ctx: Context, column: Column, scenario: Scenario, rep: int | str) -> dict:
    """One wrk run with the DUT's CPU time read around it (and /metrics outside that window)."""
    if column.restart_each_time:
        ctx.procs.restart(column.server)
    trim_access_log(column)
    counters_before = read_counters(column.admin_port) if column.admin_port else None
    noise_before = cpu_sample()
    redis_before = tree_ticks(ctx.redis.pid)[0] if "redis" in column.checks else 0
    dut_before = tree_ticks(column.server.pid)
    result = run_wrk(ctx, column, scenario, ctx.settings.duration)
    dut_after = tree_ticks(column.server.pid)
    redis_after = tree_ticks(ctx.redis.pid)[0] if "redis" in column.checks else 0
    noise = noise_ticks(noise_before, cpu_sample())
    counters = counter_deltas(counters_before, read_counters(column.admin_port)) if counters_before else {}
    row = measurement_row(rep, column, scenario, result, dut_after[0] - dut_before[0], dut_after[1] - dut_before[1],
                          noise, counters, redis_after - redis_before)
    row["flags"] = "; ".join(measurement_flags(column, row)) or "-"
    return row


def measurement_row(rep, column: Column, scenario: Scenario, r: WrkResult, dut_ticks: int, user_ticks: int,
                    noise: tuple[float, int], counters: dict, redis_ticks: int) -> dict:
    per_request = lambda ticks: ticks / CLK_TCK * 1e6 / r.requests if r.requests else 0.0
    busy = lambda ticks: 100 * ticks / CLK_TCK * 1e6 / r.duration_us if r.duration_us else 0.0
    return {"rep": rep, "column": column.name, "scenario": scenario.id, "method": scenario.method,
            "body_bytes": scenario.body_bytes, "conns": scenario.conns, "rps": round(r.rps, 1),
            "p50_us": r.p50_us, "p99_us": r.p99_us, "requests": r.requests, "duration_us": r.duration_us,
            "non2xx": r.non2xx, "socket_errors": r.socket_errors, "cpu_us_per_req": round(per_request(dut_ticks), 2),
            "user_us_per_req": round(per_request(user_ticks), 2), "dut_busy_pct": round(busy(dut_ticks)),
            "other_cpu_pct": round(busy(noise[0])), "steal_pct": round(busy(noise[1])), "token_wraps": r.wraps,
            **{k: counters.get(k, "") for k in ("verified", "cache_hits", "cache_misses", "store_trips",
                                                "store_errors", "rate_limited", "log_dropped")},
            "redis_cpu_us_per_req": round(per_request(redis_ticks), 2) if "redis" in column.checks else ""}


def measurement_flags(column: Column, row: dict) -> list[str]:
    """What makes a measurement suspect; flagged rows are listed in the report."""
    flags, n = [], max(1, row["requests"])
    if row["non2xx"] or row["socket_errors"]:
        flags.append(f"{row['non2xx']} non-2xx + {row['socket_errors']} socket errors")
    if row["token_wraps"]:
        flags.append(f"{row['token_wraps']} token wraps")
    if column.admin_port:
        if column.new_tokens and (row["verified"] < 0.99 * n or row["cache_hits"] > 0.01 * n):
            flags.append(f"not one signature check per request ({row['verified']} checks, {row['cache_hits']} hits)")
        if "cached" in column.checks and row["verified"] > 0.001 * n:
            flags.append(f"{row['verified']} signature checks on the cached path")
        if "redis" in column.checks and not 0.99 * n <= row["store_trips"] <= 1.05 * n:
            flags.append(f"{row['store_trips']} Redis round trips for {n} requests")
        if row["store_errors"] or row["rate_limited"]:
            flags.append(f"{row['store_errors']} store errors, {row['rate_limited']} refused")
        if row["log_dropped"]:
            flags.append(f"{row['log_dropped']} access log lines dropped")
    return flags


def trim_access_log(column: Column) -> None:
    """The full pipeline's access log grows by hundreds of MB per run: start it afresh past 256 MB (it is
    opened for appending, so the process keeps writing at the new end)."""
    if column.server and column.server.log_path.exists() and column.server.log_path.stat().st_size > 256 << 20:
        os.truncate(column.server.log_path, 0)


# ---------------------------------------------------------------------------------------------------------------
# The main loop: start, check, warm up, measure interleaved


def start_and_check(ctx: Context, columns: list[Column]) -> list[Column]:
    """Starts each column and runs its sanity checks; returns those that passed."""
    ready = []
    for column in columns:
        column.server = column.make_server()
        ctx.procs.start(column.server)
        problems = check_column(ctx, column)
        if problems:
            ctx.notes.append(f"`{column.name}` skipped, sanity checks failed: " + "; ".join(problems))
            log(f"{column.name}: FAILED sanity checks, skipped: {'; '.join(problems)}")
            ctx.procs.stop(column.server)
            continue
        log(f"{column.name}: sanity checks passed")
        ready.append(column)
    return ready


def warm_up(ctx: Context, columns: list[Column]) -> set[tuple[str, str]]:
    """A discarded wrk run per column and scenario; a run with errors keeps that pair out of the measurements."""
    excluded = set()
    if ctx.settings.warmup == 0:
        return excluded
    log(f"warming up: {len(columns) * len(ctx.settings.scenarios)} runs of {ctx.settings.warmup} s")
    for column in columns:
        for scenario in ctx.settings.scenarios:
            r = run_wrk(ctx, column, scenario, ctx.settings.warmup)
            if r.non2xx or r.socket_errors:
                excluded.add((column.name, scenario.id))
                ctx.notes.append(f"`{column.name}` {scenario.label}: not measured, its warm-up had {r.non2xx} "
                                 f"non-2xx answers and {r.socket_errors} socket errors")
                log(f"{column.name} {scenario.id}: warm-up errors, not measured")
    return excluded


def measure_all(ctx: Context, columns: list[Column], excluded: set, raw_path: Path) -> list[dict]:
    """Every rep of every scenario and column, interleaved. A column whose server fails is noted and left out
    from then on; the others go on."""
    rows, failed = [], set()
    total = ctx.settings.reps * len(ctx.settings.scenarios) * len(columns)
    for rep in range(1, ctx.settings.reps + 1):
        for scenario in ctx.settings.scenarios:
            for column in columns:
                if (column.name, scenario.id) in excluded or column.name in failed:
                    continue
                try:
                    row = measure(ctx, column, scenario, rep)
                    if column.server.proc.poll() is not None:
                        raise SuiteError(f"the server exited during the measurement:\n{tail(column.server.log_path)}")
                except SuiteError as e:
                    failed.add(column.name)
                    ctx.notes.append(f"`{column.name}` failed in rep {rep}, {scenario.label}, and was not measured "
                                     f"further: {e}")
                    log(f"{column.name}: FAILED, not measured further: {e}")
                    continue
                rows.append(row)
                append_tsv(raw_path, row)
                log(f"[{len(rows)}/{total}] rep {rep} {scenario.id:13} {column.name:24} {row['rps']:9.0f} req/s "
                    f"p99 {row['p99_us'] / 1000:6.2f} ms  {row['cpu_us_per_req']:6.2f} µs/req  "
                    f"DUT {row['dut_busy_pct']}%  other {row['other_cpu_pct']}%  steal {row['steal_pct']}%"
                    + (f"  FLAGS: {row['flags']}" if row["flags"] != "-" else ""))
    return rows


def append_tsv(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a") as out:
        if new:
            out.write("\t".join(RAW_FIELDS) + "\n")
        out.write("\t".join(str(row[k]) for k in RAW_FIELDS) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Scale (a): memory of idle keep-alive connections


def idle_request(ctx: Context) -> bytes:
    token = ctx.tokens.fixed["RS256"]
    return (f"GET {QUERY_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: obsgw-suite\r\n"
            f"Authorization: Bearer {token}\r\nX-Scope-OrgID: {tenant_of(token)}\r\n\r\n").encode()


def response_complete(data: bytes) -> bool:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = data[:head_end].decode("latin-1").lower()
    length = re.search(r"\r\ncontent-length:\s*(\d+)", head)
    if length:
        return len(data) - head_end - 4 >= int(length.group(1))
    if "transfer-encoding: chunked" in head:
        return data.endswith(b"0\r\n\r\n")
    return True


def open_idle_batch(port: int, count: int, request: bytes, limit: float) -> list[socket.socket]:
    """Opens `count` connections at once, each sends one GET and reads the whole answer; returns those that got a
    complete 200 (they stay open, idle in keep-alive). The others are closed."""
    sel = selectors.DefaultSelector()
    received: dict[socket.socket, bytearray] = {}

    def drop(s: socket.socket) -> None:
        sel.unregister(s)
        received.pop(s)
        s.close()

    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)
        received[s] = bytearray()
    idle, deadline = [], time.monotonic() + limit
    while received and time.monotonic() < deadline:
        for key, event in sel.select(timeout=0.5):
            s = key.fileobj
            if event & selectors.EVENT_WRITE:  # connected (or failed): send the request
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or s.send(request) != len(request):
                    drop(s)
                else:
                    sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                drop(s)
                continue
            received[s] += data
            if response_complete(received[s]):
                ok = received[s].startswith(b"HTTP/1.1 200")
                sel.unregister(s)
                received.pop(s)
                if ok:
                    idle.append(s)
                else:
                    s.close()
    for s in list(received):
        drop(s)
    sel.close()
    return idle


def still_open(sockets: list[socket.socket]) -> int:
    """Connections the server has not closed (no EOF, no error, nothing unexpected to read)."""
    alive = 0
    for s in sockets:
        try:
            alive += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def idle_memory(ctx: Context, server: Server, wanted: int) -> dict:
    """RSS/PSS of a fresh server's process tree before and after `wanted` idle keep-alive connections."""
    ctx.procs.start(server)
    probe = Column(server.name, "", "", lambda: server, server.port, server=server)  # for run_wrk
    try:
        run_wrk(ctx, probe, ALL_SCENARIOS[0], 1)  # buffers and pools in their steady state first
        time.sleep(1.0)
        rss0, pss0 = tree_memory_kib(server.pid)
        kernel0 = kernel_tcp_pages()
        sockets, started, request = [], time.monotonic(), idle_request(ctx)
        while len(sockets) < wanted and time.monotonic() - started < 120:
            batch = min(500, wanted - len(sockets))
            opened = open_idle_batch(server.port, batch, request, limit=20)
            sockets += opened
            if len(opened) < batch // 2:
                break  # the server refuses: measure what is open
        time.sleep(2.0)
        alive = still_open(sockets)
        rss1, pss1 = tree_memory_kib(server.pid)
        kernel1 = kernel_tcp_pages()
        # Again once the burst that opened them is over: a server may still hold its memory for a while (gatewayd
        # keeps a connection's request memory for a second after its response, and its spares for two trim
        # rounds), which is not what an idle connection costs.
        time.sleep(max(0.0, ctx.settings.idle_settle - 2.0))
        settled_alive = still_open(sockets)
        rss2, pss2 = tree_memory_kib(server.pid)
        for s in sockets:
            s.close()
        per = lambda after, before, n: round((after - before) * 1024 / n) if n and before is not None else ""
        return {"server": server.name, "wanted": wanted, "opened": len(sockets), "alive": alive,
                "seconds": round(time.monotonic() - started, 1), "rss_before_kib": rss0, "rss_after_kib": rss1,
                "pss_before_kib": pss0 if pss0 is not None else "", "pss_after_kib": pss1 if pss1 is not None else "",
                "rss_bytes_per_conn": per(rss1, rss0, alive),
                "pss_bytes_per_conn": per(pss1, pss0, alive) if pss1 is not None else "",
                "kernel_tcp_bytes_per_conn": round((kernel1 - kernel0) * 4096 / alive) if alive else "",
                "settled_after_s": ctx.settings.idle_settle, "settled_alive": settled_alive,
                "rss_settled_kib": rss2, "pss_settled_kib": pss2 if pss2 is not None else "",
                "rss_settled_bytes_per_conn": per(rss2, rss0, settled_alive),
                "pss_settled_bytes_per_conn": per(pss2, pss0, settled_alive) if pss2 is not None else ""}
    finally:
        ctx.procs.stop(server)


def scale_memory(ctx: Context) -> list[dict]:
    p, s = ctx.ports, ctx.settings
    makers = [("gatewayd", lambda: gatewayd_server(ctx, "idle-gatewayd", p.idle(0), p.idle(3), s.dut_cpu, [])),
              ("nginx", lambda: nginx_server(ctx, "idle-nginx", p.idle(1), s.dut_cpu, nginx_proxy_body(),
                                             upstream_block("backend", p.backend))),
              ("haproxy", lambda: haproxy_server(ctx, "idle-haproxy", p.idle(2), s.dut_cpu))]
    results = []
    for program, make in makers:
        if ctx.programs.get(program) is None:
            ctx.notes.append(f"idle-connection memory of {program}: skipped, not installed")
            continue
        wanted = s.idle_connections
        if program == "haproxy" and haproxy_maxconn() - 50 < wanted:
            wanted = haproxy_maxconn() - 50
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            ctx.notes.append(f"idle-connection memory of haproxy: {wanted:,} connections, not {s.idle_connections:,}:"
                             f" its maxconn needs two descriptors per connection and the descriptor limit here is "
                             f"{limit:,} (a hard limit this process cannot raise)")
        log(f"scale: {wanted:,} idle keep-alive connections to {program}")
        result = idle_memory(ctx, make(), wanted)
        log(f"scale: {program}: {result['alive']:,} idle connections, RSS +{result['rss_bytes_per_conn']} bytes each")
        results.append(result)
    return results


# ---------------------------------------------------------------------------------------------------------------
# Scale (b): 1 vs 2 io threads, unpinned


def thread_columns(ctx: Context) -> list[Column]:
    p, cols = ctx.ports, []
    variants = [("gatewayd", []), ("gatewayd-jwt-new-rs256", None)]
    for index, (base, policies) in enumerate(variants):
        for threads in (1, 2):
            slot = index * 2 + threads - 1
            name = f"{base}-{threads}t"
            make = (lambda name=name, slot=slot, threads=threads, policies=policies: gatewayd_server(
                ctx, name, p.threads(slot), p.threads(slot + 4), None,
                policies if policies is not None else [jwt_policy(ctx, "RS256")], threads=threads))
            cols.append(Column(name, "gatewayd", f"{base}, {threads} io thread(s), unpinned", make, p.threads(slot),
                               new_tokens=policies is None, auth="verify" if policies is None else "none",
                               admin_port=p.threads(slot + 4), pinned=False))
    return cols


def scale_threads(ctx: Context) -> list[dict]:
    """GET, 50 connections: plain proxy (wrk may be the limit) and a new RS256 token per request (gatewayd is)."""
    if "RS256" not in ctx.tokens.files:
        ctx.notes.append("io-thread scaling of jwt-new-rs256: no token files (no jwt-new column chosen)")
    columns = [c for c in thread_columns(ctx) if not c.new_tokens or "RS256" in ctx.tokens.files]
    columns = start_and_check(ctx, columns)
    scenario = ALL_SCENARIOS[0]
    for column in columns:
        run_wrk(ctx, column, scenario, max(1, ctx.settings.warmup))
    rows = []
    for rep in range(1, ctx.settings.reps + 1):
        for column in columns:
            row = measure(ctx, column, scenario, rep)
            rows.append(row)
            log(f"scale: rep {rep} {column.name:28} {row['rps']:9.0f} req/s  {row['cpu_us_per_req']:6.2f} µs/req"
                + (f"  FLAGS: {row['flags']}" if row["flags"] != "-" else ""))
    for column in columns:
        ctx.procs.stop(column.server)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Micro-benchmarks and openssl speed, pinned to DUT_CPU


def micro_min_time(s: Settings) -> str:
    return "0.1" if s.quick else "0.5"


def openssl_seconds(s: Settings) -> str:
    return "1" if s.quick else "3"


def run_micro(ctx: Context, results: Path) -> dict:
    s = ctx.settings
    out: dict = {"benchmarks": [], "openssl": {}}
    if os.access(s.micro_bench, os.X_OK):
        log("micro: obsgw_micro_bench (JSON)")
        code, text = run_bounded(["taskset", "-c", str(s.dut_cpu), str(s.micro_bench),
                                  f"--benchmark_filter={MICRO_FILTER}", "--benchmark_format=json",
                                  f"--benchmark_min_time={micro_min_time(s)}"], timeout=900,
                                 env=dict(os.environ, TMPDIR=str(ctx.tmp)))  # it leaves a JWK Set file behind
        if code == 0:
            (results / "micro.json").write_text(text[text.index("{"):])
            out["benchmarks"] = json.loads(text[text.index("{"):])["benchmarks"]
        else:
            ctx.notes.append(f"obsgw_micro_bench failed: {text[-500:]}")
    else:
        ctx.notes.append(f"micro-benchmarks: {s.micro_bench} not found (ninja -C build-release obsgw_micro_bench)")
    if ctx.programs.get("openssl"):
        log("micro: openssl speed rsa2048 ecdsap256 ed25519")
        code, text = run_bounded(["taskset", "-c", str(s.dut_cpu), "openssl", "speed", "-seconds",
                                  openssl_seconds(s), "rsa2048", "ecdsap256", "ed25519"], timeout=600)
        (results / "openssl-speed.txt").write_text(text)
        out["openssl"] = parse_openssl_speed(text)
    return out


def parse_openssl_speed(text: str) -> dict[str, float]:
    """verify/s per algorithm from openssl speed's summary lines."""
    patterns = {"rsa2048": r"^rsa 2048 bits.*?([\d.]+)\s*$", "ecdsap256": r"\(nistp256\).*?([\d.]+)\s*$",
                "ed25519": r"\(Ed25519\).*?([\d.]+)\s*$"}
    found = {}
    for name, pattern in patterns.items():
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            found[name] = float(match.group(1))
    return found


# ---------------------------------------------------------------------------------------------------------------
# Statistics and goals


@dataclass
class Stats:
    n: int
    rps: float
    rps_min: float
    rps_max: float
    p50_us: float
    p99_us: float
    cpu: float
    user: float
    busy: float
    other_max: float
    steal_max: float
    bad: int
    # rep -> {"rps", "p99_us", "cpu"}: what each rep measured, so that two columns are compared rep by rep (the
    # machine's mood drifts over minutes; within a rep the columns run back to back)
    per_rep: dict = field(default_factory=dict)


def summarize(rows: list[dict]) -> dict[tuple[str, str], Stats]:
    """Medians per (column, scenario) over the reps; errors summed, other CPU its largest value."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["column"], r["scenario"]), []).append(r)
    med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
    per_rep = lambda rs: {r["rep"]: {"rps": float(r["rps"]), "p99_us": float(r["p99_us"]),
                                     "cpu": float(r["cpu_us_per_req"])} for r in rs}
    return {key: Stats(len(rs), med(rs, "rps"), min(float(r["rps"]) for r in rs), max(float(r["rps"]) for r in rs),
                       med(rs, "p50_us"), med(rs, "p99_us"), med(rs, "cpu_us_per_req"), med(rs, "user_us_per_req"),
                       med(rs, "dut_busy_pct"), max(float(r["other_cpu_pct"]) for r in rs),
                       max(float(r.get("steal_pct") or 0) for r in rs),
                       sum(int(r["non2xx"]) + int(r["socket_errors"]) for r in rs), per_rep(rs))
            for key, rs in groups.items()}


def paired_reps(x: Stats, y: Stats, what: str) -> list[str]:
    return [k for k in x.per_rep if k in y.per_rep and y.per_rep[k][what] > 0]


def ratio(stats: dict, a: str, b: str, scenario: str, what: str = "rps") -> float | None:
    """a over b: the median of the ratios rep by rep when both columns have two reps or more in common, else the
    ratio of the medians."""
    x, y = stats.get((a, scenario)), stats.get((b, scenario))
    if x is None or y is None or getattr(y, what) == 0:
        return None
    reps = paired_reps(x, y, what)
    if len(reps) >= 2:
        return statistics.median(x.per_rep[k][what] / y.per_rep[k][what] for k in reps)
    return getattr(x, what) / getattr(y, what)


@dataclass
class Goal:
    text: str
    value: Callable[[dict, str], float | None]  # (stats, scenario id) -> the figure judged
    passes: Callable[[float], bool]
    unit: str = "×"
    scenarios: tuple[str, ...] | None = None  # None: every scenario


def cpu_difference(stats: dict, a: str, b: str, scenario: str) -> float | None:
    """a's CPU per request minus b's: rep by rep (median) when they have two reps or more in common."""
    x, y = stats.get((a, scenario)), stats.get((b, scenario))
    if x is None or y is None:
        return None
    reps = paired_reps(x, y, "cpu")
    if len(reps) >= 2:
        return statistics.median(x.per_rep[k]["cpu"] - y.per_rep[k]["cpu"] for k in reps)
    return x.cpu - y.cpu


ISSUE_GOALS = [
    Goal("plain: req/s ≥ 1.0× nginx", lambda s, sc: ratio(s, "gatewayd", "nginx", sc), lambda v: v >= 1.0),
    Goal("plain: p99 ≤ 1.2× nginx", lambda s, sc: ratio(s, "gatewayd", "nginx", sc, "p99_us"), lambda v: v <= 1.2),
    Goal("plain: CPU/req ≤ nginx", lambda s, sc: ratio(s, "gatewayd", "nginx", sc, "cpu"), lambda v: v <= 1.0),
    Goal("full pipeline: req/s ≥ 0.9× nginx (plain)", lambda s, sc: ratio(s, "gatewayd-full", "nginx", sc),
         lambda v: v >= 0.9),
    Goal("full pipeline: req/s ≥ 2.5× haproxy-jwt-rs256",
         lambda s, sc: ratio(s, "gatewayd-full", "haproxy-jwt-rs256", sc), lambda v: v >= 2.5),
    Goal("jwt-new-rs256: req/s ≥ 1.3× haproxy-jwt-rs256",
         lambda s, sc: ratio(s, "gatewayd-jwt-new-rs256", "haproxy-jwt-rs256", sc), lambda v: v >= 1.3),
    Goal("jwt-new-es256: req/s ≥ 1.2× haproxy-jwt-es256",
         lambda s, sc: ratio(s, "gatewayd-jwt-new-es256", "haproxy-jwt-es256", sc), lambda v: v >= 1.2),
    Goal("signing 10 KB: + ≤ 8 µs CPU/req (gatewayd-sign − gatewayd)",
         lambda s, sc: cpu_difference(s, "gatewayd-sign", "gatewayd", sc), lambda v: v <= 8.0, " µs",
         ("post10k-c50", "post10k-c500")),
]

EARLIER_GOALS = [  # the identity and traffic milestones' goals (proxy_bench.sh judged them before this suite)
    Goal("jwt-cached: req/s ≥ 0.95× gatewayd", lambda s, sc: ratio(s, "gatewayd-jwt-cached", "gatewayd", sc),
         lambda v: v >= 0.95),
    Goal("limits in process: req/s ≥ 0.95× gatewayd", lambda s, sc: ratio(s, "gatewayd-limits", "gatewayd", sc),
         lambda v: v >= 0.95),
    Goal("limits in Redis: req/s ≥ 0.5× limits in process",
         lambda s, sc: ratio(s, "gatewayd-limits-redis", "gatewayd-limits", sc), lambda v: v >= 0.5),
    Goal("signing POST: req/s ≥ 0.90× gatewayd", lambda s, sc: ratio(s, "gatewayd-sign", "gatewayd", sc),
         lambda v: v >= 0.90, "×", tuple(s.id for s in ALL_SCENARIOS if s.method == "POST")),
]


def judge(goal: Goal, stats: dict, scenario: str) -> tuple[str, bool | None]:
    """(cell text, passed or None when not measured)."""
    if goal.scenarios is not None and scenario not in goal.scenarios:
        return "", None
    value = goal.value(stats, scenario)
    if value is None:
        return "n/a", None
    shown = f"{value:+.1f} µs" if goal.unit == " µs" else f"{value:.2f}×"
    ok = goal.passes(value)
    return f"{'**PASS**' if ok else 'MISS'} {shown}", ok


def micro_time_us(bench: dict) -> float:
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[bench.get("time_unit", "ns")]
    return bench["cpu_time"] * scale


VERIFY_REFERENCE = {"RS256": "rsa2048", "PS256": "rsa2048", "ES256": "ecdsap256", "EdDSA": "ed25519"}


def verify_rows(micro: dict) -> list[tuple[str, float, float | None, float | None]]:
    """(algorithm, our µs per verification, openssl µs per verify, openssl / ours)."""
    rows = []
    for bench in micro.get("benchmarks", []):
        if bench["name"].startswith("BM_VerifyNewToken/"):
            alg = bench["name"].split("/")[1]
            ours = micro_time_us(bench)
            per_s = micro.get("openssl", {}).get(VERIFY_REFERENCE.get(alg, ""))
            theirs = 1e6 / per_s if per_s else None
            rows.append((alg, ours, theirs, theirs / ours if theirs else None))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Report and charts


def command_output(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr).strip() else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def shown_path(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def machine_facts(ctx: Context, started: datetime.datetime) -> list[tuple[str, str]]:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    prog = ctx.programs
    commit = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]) if prog.get("git") else "?"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "lib", "include", "apps"],
                           capture_output=True, text=True).stdout.strip() if prog.get("git") else ""
    version = lambda name, argv: command_output(argv) if prog.get(name) else "not installed"
    return [
        ("date", started.strftime("%Y-%m-%d %H:%M %Z").strip()),
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("kernel", os.uname().release),
        ("load average at start", " ".join(Path("/proc/loadavg").read_text().split()[:3])),
        ("gatewayd", f"`{shown_path(ctx.settings.gatewayd)}`, commit {commit}"
                     f"{' (lib/include/apps modified)' if dirty else ''}"),
        ("nginx", version("nginx", [prog.get("nginx") or "nginx", "-v"]).replace("nginx version: ", "")),
        ("haproxy", version("haproxy", [prog.get("haproxy") or "haproxy", "-v"])),
        ("wrk", version("wrk", ["wrk", "-v"])),
        ("redis-server", version("redis-server", [prog.get("redis-server") or "redis-server", "--version"])),
        ("gcc", version("g++", ["g++", "--version"])),
        ("openssl", version("openssl", ["openssl", "version"])),
        ("python", sys.version.split()[0]),
    ]


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "–" if value is None else f"{value:,.{digits}f}{suffix}"


def scenario_table(stats: dict, columns: list[str], scenario: Scenario) -> list[str]:
    bases = [b for b in RATIO_BASES if (b, scenario.id) in stats]
    lines = ["| column | req/s | min..max | p50 ms | p99 ms | DUT CPU µs/req | CPU − gatewayd | DUT busy % | "
             "other / steal % | bad | " + " | ".join(f"× {b}" for b in bases) + " |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(bases)]
    for name in columns:
        st = stats.get((name, scenario.id))
        if st is None:
            continue
        ratios = [fmt(ratio(stats, name, b, scenario.id)) if b != name else "1.00" for b in bases]
        bold = "**" if name.startswith("gatewayd") else ""
        over = cpu_difference(stats, name, "gatewayd", scenario.id) if name.startswith("gatewayd-") else None
        lines.append(f"| {bold}{name}{bold} | {st.rps:,.0f} | {st.rps_min:,.0f}..{st.rps_max:,.0f} | "
                     f"{st.p50_us / 1000:.2f} | {st.p99_us / 1000:.2f} | {st.cpu:.1f} | "
                     f"{'–' if over is None else f'{over:+.1f}'} | {st.busy:.0f} | "
                     f"{st.other_max:.0f} / {st.steal_max:.0f} | {st.bad} | " + " | ".join(ratios) + " |")
    return lines


def goals_table(goals: list[Goal], stats: dict, scenarios: list[Scenario]) -> list[str]:
    lines = ["| goal | " + " | ".join(s.label for s in scenarios) + " |", "|---|" + "---|" * len(scenarios)]
    for goal in goals:
        cells = [judge(goal, stats, s.id)[0] for s in scenarios]
        lines.append(f"| {goal.text} | " + " | ".join(cells) + " |")
    return lines


def headline_goals(stats: dict, scale: dict, micro: dict) -> list[str]:
    """One PASS/MISS line per goal of issue 5: GET and POST 10 KB at 50 connections, scale and micro."""
    lines = []
    for goal in ISSUE_GOALS:
        parts = []
        for sid in ("get-c50", "post10k-c50"):
            text, ok = judge(goal, stats, sid)
            if ok is not None:
                parts.append(f"{sid}: {text}")
        lines.append(f"- {goal.text}: " + ("; ".join(parts) if parts else "not measured"))
    lines += scale_goal_lines(scale) + micro_goal_lines(micro)
    return lines


def scale_goal_lines(scale: dict) -> list[str]:
    lines = []
    thread_stats = summarize(scale.get("threads", []))
    for base, note in (("gatewayd-jwt-new-rs256", "gatewayd is the limit: the goal"),
                       ("gatewayd", "wrk shares the cores: for information")):
        r = ratio(thread_stats, f"{base}-2t", f"{base}-1t", "get-c50")
        if r is not None:
            lines.append(f"- 2 io threads ≥ 1.6× of 1 ({base}, GET, {note}): "
                         f"{'**PASS**' if r >= 1.6 else 'MISS'} {r:.2f}×")
    for m in scale.get("memory", []):
        if m["server"] == "idle-gatewayd" and m.get("rss_settled_bytes_per_conn", "") != "":
            per = float(m["pss_settled_bytes_per_conn"] or m["rss_settled_bytes_per_conn"])
            first = float(m["pss_bytes_per_conn"] or m["rss_bytes_per_conn"] or 0)
            lines.append(f"- idle keep-alive connection ≤ 10 KB of gatewayd memory: "
                         f"{'**PASS**' if per <= 10240 else 'MISS'} {per / 1024:.1f} KB after "
                         f"{m['settled_after_s']:g} s ({first / 1024:.1f} KB after 2 s; "
                         f"{m['settled_alive']:,} connections)")
    return lines


def micro_goal_lines(micro: dict) -> list[str]:
    for alg, ours, theirs, eff in verify_rows(micro):
        if alg == "RS256" and eff is not None:
            return [f"- RS256 verification within 80% of openssl's verify/s (micro-benchmark): "
                    f"{'**PASS**' if eff >= 0.8 else 'MISS'} {eff:.2f} (ours {ours:.1f} µs, openssl {theirs:.1f} µs)"]
    return []


def proof_table(rows: list[dict], columns: list[Column]) -> list[str]:
    """The gatewayd columns' own counters, summed over the reps, per scenario."""
    lines = ["| column | scenario | requests (wrk) | signature checks / req | cache hits / req | Redis round trips "
             "/ req | store errors | refused | log lines dropped | token wraps | redis-server CPU µs/req |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for column in columns:
        if not column.admin_port:
            continue
        for scenario in ALL_SCENARIOS:
            rs = [r for r in rows if r["column"] == column.name and r["scenario"] == scenario.id]
            if not rs:
                continue
            total = lambda k: sum(int(r[k] or 0) for r in rs)
            n = max(1, total("requests"))
            redis = (fmt(statistics.median(float(r["redis_cpu_us_per_req"]) for r in rs))
                     if "redis" in column.checks else "–")
            lines.append(f"| {column.name} | {scenario.id} | {total('requests'):,} | {total('verified') / n:.3f} | "
                         f"{total('cache_hits') / n:.3f} | {total('store_trips') / n:.3f} | {total('store_errors')} | "
                         f"{total('rate_limited')} | {total('log_dropped')} | {total('token_wraps')} | {redis} |")
    return lines


def memory_table(memory: list[dict]) -> list[str]:
    lines = ["| server | idle connections (open at the end / wanted) | RSS before → after 2 s → settled MiB | "
             "PSS before → after 2 s → settled MiB | RSS per connection, 2 s / settled | PSS per connection, 2 s / "
             "settled | kernel socket buffers per connection (both ends) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    mib = lambda kib: f"{int(kib) / 1024:.1f}" if kib != "" else "–"
    per = lambda b: f"{int(b):,} B" if b != "" else "–"
    for m in memory:
        lines.append(f"| {m['server'].removeprefix('idle-')} | {m['settled_alive']:,} / {m['wanted']:,} | "
                     f"{mib(m['rss_before_kib'])} → {mib(m['rss_after_kib'])} → {mib(m['rss_settled_kib'])} | "
                     f"{mib(m['pss_before_kib'])} → {mib(m['pss_after_kib'])} → {mib(m['pss_settled_kib'])} | "
                     f"{per(m['rss_bytes_per_conn'])} / **{per(m['rss_settled_bytes_per_conn'])}** | "
                     f"{per(m['pss_bytes_per_conn'])} / **{per(m['pss_settled_bytes_per_conn'])}** | "
                     f"{per(m['kernel_tcp_bytes_per_conn'])} |")
    return lines


def threads_table(rows: list[dict]) -> list[str]:
    stats = summarize(rows)
    lines = ["| variant | 1 io thread req/s | 2 io threads req/s | 2 / 1 | CPU µs/req 1 → 2 | busy % 1 → 2 | "
             "other % 1 → 2 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for base in ("gatewayd", "gatewayd-jwt-new-rs256"):
        one, two = stats.get((f"{base}-1t", "get-c50")), stats.get((f"{base}-2t", "get-c50"))
        if one and two:
            lines.append(f"| {base} | {one.rps:,.0f} | {two.rps:,.0f} | **{two.rps / one.rps:.2f}×** | "
                         f"{one.cpu:.1f} → {two.cpu:.1f} | {one.busy:.0f} → {two.busy:.0f} | "
                         f"{one.other_max:.0f} → {two.other_max:.0f} |")
    return lines


def micro_table(micro: dict) -> list[str]:
    lines = ["| benchmark | CPU time | throughput |", "|---|---:|---:|"]
    for b in micro.get("benchmarks", []):
        t = micro_time_us(b)
        shown = f"{t * 1000:.0f} ns" if t < 1 else f"{t:.2f} µs"
        if "bytes_per_second" in b:
            rate = f"{b['bytes_per_second'] / 1e9:.2f} GB/s"
        else:
            rate = per_second(b.get("items_per_second"))
        lines.append(f"| `{b['name']}` | {shown} | {rate} |")
    return lines


def per_second(rate: float | None) -> str:
    if rate is None:
        return ""
    return f"{rate / 1e6:.2f} M/s" if rate >= 1e6 else f"{rate / 1e3:,.1f} k/s"


def verify_table(micro: dict) -> list[str]:
    lines = ["| algorithm | ours: µs per verification (BM_VerifyNewToken) | openssl speed: µs per verify | "
             "openssl verify/s | efficiency (openssl µs / ours) |", "|---|---:|---:|---:|---:|"]
    for alg, ours, theirs, eff in verify_rows(micro):
        lines.append(f"| {alg} | {ours:.1f} | {fmt(theirs, 1)} | {fmt(1e6 / theirs if theirs else None, 0)} | "
                     f"{fmt(eff)} |")
    return lines


def write_report(ctx: Context, started: datetime.datetime, columns: list[Column], rows: list[dict], scale: dict,
                 micro: dict, charts: list[str]) -> str:
    s = ctx.settings
    stats = summarize(rows)
    names = [c.name for c in columns]
    out = [f"# obsgw benchmark suite: gatewayd vs nginx and HAProxy ({started:%Y-%m-%d})", ""]
    out += [f"- **{k}**: {v}" for k, v in machine_facts(ctx, started)]
    out += [f"- **settings**: {s.reps} reps × {s.duration} s (warm-up {s.warmup} s), wrk -t{s.wrk_threads} "
            f"--latency, interleaved, medians reported; DUT on CPU {s.dut_cpu} alone, wrk + backend + redis-server "
            f"on CPU {s.load_cpu} (taskset); every server 1 worker / io thread; {len(names)} columns × "
            f"{len(s.scenarios)} scenarios; took {(datetime.datetime.now().astimezone() - started).seconds // 60} min",
            f"- **command**: `benchmarks/suite.sh {' '.join(sys.argv[1:])}`".replace("`benchmarks/suite.sh `",
                                                                                      "`benchmarks/suite.sh`"), ""]
    out += ["Judge ratios within this run: absolute figures move with whatever else the machine does.", ""]
    out += [f"![{CHART_TITLES[c]}]({c})" for c in charts] + ([""] if charts else [])
    out += ["## Goals (issue 5)", "", "Headline (GET and POST 10 KB at 50 connections; scale; micro):", ""]
    out += headline_goals(stats, scale, micro) + ["", "Per scenario:", ""]
    out += goals_table(ISSUE_GOALS, stats, s.scenarios)
    out += ["", "Earlier goals (the identity and traffic milestones):", ""]
    out += goals_table(EARLIER_GOALS, stats, s.scenarios)
    out += ["", "## Columns", "", "| column | what |", "|---|---|"]
    out += [f"| {c.name} | {c.description} |" for c in columns]
    out += ["", f"Configurations (all written by the suite into its temporary directory; `--keep` keeps them): every "
            f"nginx 1 worker, `keepalive_timeout 300s`, `client_body_buffer_size 128k` (bodies stay in memory), "
            f"upstream pools `keepalive 1024`; HAProxy `nbthread 1`, `maxconn {haproxy_maxconn()}`, `http-reuse "
            f"always`; gatewayd `threads` 1, upstream `max_idle_connections` 1024 (pools as large as the 500 "
            f"connections, like nginx's), `timeouts.idle_ms` 300000, log level warn, access log off except in "
            f"gatewayd-full; rate limits of 10⁹ per second (never refusing); redis-server "
            f"`--save '' --appendonly no`, `redis.timeout_ms` 50."]
    tokens = ctx.tokens
    out += ["", f"Every request carries `Authorization: Bearer <token>` and `X-Scope-OrgID` (the token's tenant"
            f"{f'; {s.tenants} tenants in turn' if s.tenants > 1 else ''}), plain columns included, so every column "
            f"receives the same bytes: the RS256 token ({tokens.size('RS256')} bytes; the ES256 one, "
            f"{tokens.size('ES256')} bytes, for haproxy-jwt-es256). Tokens: RFC 9068-shaped access tokens (`typ` "
            f"at+jwt, iss, aud, exp, iat, nbf, jti, client_id, scope, tenant) signed with RSA-2048 / P-256 keys made "
            f"for this run; gatewayd checks issuer, audience, expiry and `typ`, HAProxy issuer, audience and expiry."]
    if tokens.minted:
        out += ["", f"jwt-new columns: {tokens.minted:,} tokens per algorithm signed in {tokens.mint_seconds:.0f} s; "
                f"each wrk thread reads its own slice, one token per request, and the gatewayd is restarted before "
                f"every measurement, so no process sees a token twice (the proof table counts signature checks per "
                f"request and token wraps)."]
    flagged = [r for r in rows + scale.get("threads", []) if r["flags"] != "-"]
    if ctx.notes or flagged:
        out += ["", "## Notes, skipped columns and flagged measurements", ""] + [f"- {n}" for n in ctx.notes]
        out += [f"- **flagged**: rep {r['rep']} {r['column']} {r['scenario']}: {r['flags']}" for r in flagged]
    out += ["", "## Results per scenario", "",
            "Medians over the reps. `bad`: non-2xx answers + socket errors, summed over the reps (must be 0). "
            "`× X`: this row's req/s over column X's, rep by rep (the median of the per-rep ratios: within a rep the "
            "columns run back to back, so a slow minute of the machine weighs on both), as are the goals' ratios."]
    for scenario in s.scenarios:
        out += ["", f"### {scenario.label}", ""] + scenario_table(stats, names, scenario)
    out += ["", "## Proof of the measured path", "",
            "Read from each gatewayd's `/metrics` before and after every measurement (outside the CPU window): "
            "`obsgw_jwt_verified_total`, `obsgw_token_cache_lookups_total`, "
            "`obsgw_rate_limit_store_duration_seconds_count`, `obsgw_rate_limit_store_errors_total`, "
            "`obsgw_rate_limited_total`, `obsgw_log_lines_dropped_total`. Per request slightly above 1.000 where "
            "requests still in flight when wrk stops were handled but not counted by wrk.", ""]
    out += proof_table(rows, columns)
    out += ["", "## JWT verification cost end to end", ""] + jwt_cost_section(stats, rows, micro)
    out += ["", "## Scale", ""] + scale_section(ctx, scale)
    out += ["", "## Micro-benchmarks", ""] + micro_section(ctx, micro)
    out += ["", "## How to read the figures", "",
            "- **DUT CPU µs/req**: utime+stime of the server under test's process tree (nginx: master and worker) "
            "over the measurement, divided by the requests wrk completed; softirq time the kernel charges to no "
            "process is left out. `1e6 / µs` is what one core could serve. nginx-authreq's auth checks run in the "
            "backend (LOAD_CPU) and are not in its figure.",
            "- **DUT busy %**: the same CPU time over the wall time; near 100 the DUT core was the limit, well below "
            "it wrk or the backend on the other core were.",
            "- **other / steal %**: CPU the rest of the machine used meanwhile (all CPUs' busy time from /proc/stat "
            "minus the suite's own processes, wrk included) and time the hypervisor gave to other guests, the "
            "largest over the reps, in % of one core. Above ~10 the measurement was disturbed: compare it with "
            "the same column's other reps (raw.tsv).",
            "- Latencies are at saturation (closed loop: every connection sends its next request at once).",
            "- Every file the suite wrote is in this directory: `raw.tsv` (every measurement, with the counters), "
            "`scale.tsv`, `micro.json`, `openssl-speed.txt`."]
    return "\n".join(out) + "\n"


def jwt_cost_section(stats: dict, rows: list[dict], micro: dict) -> list[str]:
    """What a signature check costs gatewayd per request (jwt-new − gatewayd), next to openssl's verify time."""
    openssl = micro.get("openssl", {})
    user = {}
    for (column, scenario), _ in stats.items():
        rs = [r for r in rows if r["column"] == column and r["scenario"] == scenario]
        user[(column, scenario)] = statistics.median(float(r["user_us_per_req"]) for r in rs)
    out = ["DUT CPU µs per request of the jwt-new column minus that of plain gatewayd, same scenario and run: the "
           "whole cost of a new token (base64url and JSON decoding, claim checks, the cache insert, the longer head, "
           "and kernel time that grows as the request rate falls), and the same in user space alone (utime). "
           "Efficiency: openssl's µs per verify over that cost (the identity milestone's goal: ≥ 0.80).", "",
           "| algorithm | scenario | jwt-new − gatewayd µs/req | jwt-new − jwt-cached µs/req | user space only "
           "µs/req | openssl µs / verify | efficiency |", "|---|---|---:|---:|---:|---:|---:|"]
    found = False
    for alg, reference in (("rs256", "rsa2048"), ("es256", "ecdsap256")):
        for scenario in ("get-c50", "post10k-c50"):
            cost = cpu_difference(stats, f"gatewayd-jwt-new-{alg}", "gatewayd", scenario)
            if cost is None:
                continue
            found = True
            cached = cpu_difference(stats, f"gatewayd-jwt-new-{alg}", "gatewayd-jwt-cached", scenario)
            user_cost = user[(f"gatewayd-jwt-new-{alg}", scenario)] - user[("gatewayd", scenario)]
            verify_us = 1e6 / openssl[reference] if reference in openssl else None
            out.append(f"| {alg.upper()} | {scenario} | {cost:.1f} | {fmt(cached, 1)} | {user_cost:.1f} | "
                       f"{fmt(verify_us, 1)} | {fmt(verify_us / cost if verify_us and cost > 0 else None)} |")
    return out if found else ["Not measured (needs the gatewayd and gatewayd-jwt-new-* columns)."]


def scale_section(ctx: Context, scale: dict) -> list[str]:
    s = ctx.settings
    if s.skip_scale:
        return ["Skipped (`--skip-scale`)."]
    out = [f"### Memory of {s.idle_connections:,} idle keep-alive connections", "",
           f"A fresh server of each kind (1 worker / io thread, on CPU {s.dut_cpu}), warmed with 1 s of wrk; then "
           f"{s.idle_connections:,} client connections, each of which sent one complete GET (with the token) and read "
           f"its answer, sit idle in keep-alive. Memory of the server's process tree before and after (RSS from "
           f"/proc/PID/status, PSS from /proc/PID/smaps_rollup), divided by the connections still open: 2 s after "
           f"the last one opened, and again {s.idle_settle:g} s after (settled), once the memory of the burst that "
           f"opened them has been freed (gatewayd keeps a connection's request memory for 1 s after its response, "
           f"its spares for two 10 s trim rounds). "
           f"**Kernel memory is not in RSS**: the last column is the change of the machine's TCP socket buffer "
           f"pages (/proc/net/sockstat `mem`, both ends of every connection) per connection, near 0 while the "
           f"connections are idle; {kernel_objects_text()} nginx allocates its connection table "
           f"(worker_connections) at start, so that part is in its baseline.", ""]
    out += memory_table(scale.get("memory", []))
    out += ["", "### 1 vs 2 io threads (unpinned)", "",
            "gatewayd with `threads` 1 and 2, no taskset for it or wrk (the backend stays on LOAD_CPU), GET with 50 "
            "connections: the plain proxy (where wrk shares the two cores and may be the limit) and a new RS256 "
            "token per request (where gatewayd is the limit; restarted before every measurement).", ""]
    out += threads_table(scale.get("threads", []))
    return out


def kernel_objects_text() -> str:
    tcp, inode = slab_object_bytes("TCP"), slab_object_bytes("sock_inode_cache")
    if tcp is None or inode is None:
        return "every socket also holds kernel objects (its `TCP` and `sock_inode_cache` slab entries) on each end."
    return (f"every socket also holds a {tcp:,}-byte `TCP` and an {inode:,}-byte `sock_inode_cache` kernel object "
            f"(/proc/slabinfo) on each end, the same for every server.")


def micro_section(ctx: Context, micro: dict) -> list[str]:
    if ctx.settings.skip_micro:
        return ["Skipped (`--skip-micro`)."]
    s = ctx.settings
    out = [f"`obsgw_micro_bench --benchmark_filter='{MICRO_FILTER}' --benchmark_min_time={micro_min_time(s)}` and "
           f"`openssl speed -seconds {openssl_seconds(s)} rsa2048 ecdsap256 ed25519`, both pinned to CPU "
           f"{s.dut_cpu}.", ""]
    out += verify_table(micro) + ["", "Efficiency 1.00 means a verification costs what openssl's own loop needs; "
                                      "the issue's goal is ≥ 0.80 for RS256.", ""]
    out += micro_table(micro)
    return out


def gnuplot_terminal(gnuplot: str) -> str | None:
    for terminal in ("pngcairo", "png"):
        if subprocess.run([gnuplot, "-e", f"set terminal {terminal}"], capture_output=True).returncode == 0:
            return terminal
    return None


CHART_TITLES = {"throughput.png": "requests per second", "cpu.png": "DUT CPU µs per request"}

COLORS = ["#9e9e9e", "#e08214", "#b35806", "#fdb863", "#8c510a", "#bf812d", "#08519c", "#3182bd", "#6baed6",
          "#31a354", "#74c476", "#756bb1", "#9e9ac8", "#de2d26"]


def draw_chart(ctx: Context, stats: dict, names: list[str], metric: str, ylabel: str, title: str, png: Path) -> bool:
    """Grouped bars: one group per scenario, one bar per column."""
    gnuplot = ctx.programs.get("gnuplot")
    terminal = gnuplot and gnuplot_terminal(gnuplot)
    if not terminal:
        return False
    data = ctx.tmp / f"{png.stem}.dat"
    lines = ["scenario " + " ".join(names)]
    for sc in ctx.settings.scenarios:
        values = [stats.get((n, sc.id)) for n in names]
        lines.append(f'"{sc.label}" ' + " ".join(f"{getattr(v, metric):.2f}" if v else "?" for v in values))
    data.write_text("\n".join(lines) + "\n")
    palette = "\n".join(f'set linetype {i + 1} lc rgb "{COLORS[ALL_COLUMNS.index(n) % len(COLORS)]}"'
                        for i, n in enumerate(names))
    script = f"""set terminal {terminal} size 1600,800 {'font "sans,11"' if terminal == 'pngcairo' else ''}
set output "{png}"
set title "{title}"
set datafile missing "?"
set style data histograms
set style histogram clustered gap 2
set style fill solid 0.9 border -1
set boxwidth 0.9
set key outside right top vertical
set ylabel "{ylabel}"
set xrange [-0.5:{len(ctx.settings.scenarios) - 0.5}]
set yrange [0:*]
set grid ytics
set format y "{'%.0s%c' if metric == 'rps' else '%.0f'}"
{palette}
plot for [i=2:{len(names) + 1}] "{data}" using i:xtic(1) title columnheader(i)
"""
    (ctx.tmp / f"{png.stem}.gp").write_text(script)
    code, out = run_bounded([gnuplot, str(ctx.tmp / f"{png.stem}.gp")], timeout=60)
    if code != 0:
        ctx.notes.append(f"gnuplot failed for {png.name}: {out[-300:]}")
        return False
    return True


def draw_charts(ctx: Context, stats: dict, names: list[str], started: datetime.datetime) -> list[str]:
    if not ctx.programs.get("gnuplot"):
        ctx.notes.append("no charts: gnuplot is not installed (apt-get install gnuplot-nox)")
        return []
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    where = f"{cpu}, {os.cpu_count()} cores, {started:%Y-%m-%d}"
    reps = f"median of {ctx.settings.reps}" if ctx.settings.reps > 1 else "1 rep"
    charts = []
    for metric, ylabel, what, file in (("rps", "requests per second", "req/s", "throughput.png"),
                                       ("cpu", "DUT CPU µs per request", "DUT CPU µs per request", "cpu.png")):
        if draw_chart(ctx, stats, names, metric, ylabel, f"obsgw suite: {what} ({reps}) — {where}",
                      ctx.settings.results_dir / file):
            charts.append(file)
    return charts


# ---------------------------------------------------------------------------------------------------------------
# main


def estimate_seconds(s: Settings, columns: list[Column], token_files: bool) -> float:
    """A forecast from the overheads seen on a 2-core VM: measurements, warm-ups, token signing, scale, micro."""
    measurements = len(columns) * len(s.scenarios)
    restarts = sum(c.restart_each_time for c in columns) * len(s.scenarios)
    total = s.reps * (measurements * (s.duration + 0.2) + restarts * 0.6)
    total += measurements * (s.warmup + 0.1) + len(columns) * 0.2
    if token_files:
        total += s.tokens / (1400 * (os.cpu_count() or 1)) + 5
    if not s.skip_scale:
        total += 45 + s.reps * 4 * (s.duration + 0.5) + 4 * (max(1, s.warmup) + 1)
    if not s.skip_micro:
        total += 15 if s.quick else 50
    return total + 10


def needs_token_files(s: Settings, columns: list[Column]) -> bool:
    return any(c.new_tokens for c in columns) or not s.skip_scale  # the io-thread scaling uses them too


def prepare(ctx: Context, columns: list[Column]) -> None:
    """Tokens and the signing secret."""
    s = ctx.settings
    ctx.tokens = prepare_tokens(ctx.tmp, s.tokens, s.wrk_threads, needs_token_files(s, columns))
    ctx.sign_secret = ctx.tmp / "sign.key"
    ctx.sign_secret.write_text(secrets.token_hex(32))  # 64 bytes, no newline: the secret is the file's bytes
    ctx.sign_secret.chmod(0o600)


def run(ctx: Context) -> None:
    s = ctx.settings
    started = datetime.datetime.now().astimezone()
    for required in ("wrk", "nginx", "taskset", "g++"):
        if ctx.programs.get(required) is None:
            raise SuiteError(f"{required} is needed (benchmarks/suite.sh installs it as root)")
    if ctx.programs.get("gatewayd") is None:
        raise SuiteError(f"no gatewayd at {s.gatewayd} (set GATEWAYD, or run benchmarks/suite.sh to build it)")
    check_ports_free(ctx.ports)
    raise_fd_limit(s.idle_connections * 2 + 1000)
    columns = available_columns(ctx)
    estimate = estimate_seconds(s, columns, needs_token_files(s, columns))
    done_at = time.strftime("%H:%M", time.localtime(time.time() + estimate))
    log(f"{len(columns)} columns × {len(s.scenarios)} scenarios × {s.reps} reps × {s.duration} s; "
        f"estimated time {estimate / 60:.0f} min (done about {done_at})")
    s.results_dir.mkdir(parents=True, exist_ok=True)
    raw_path = s.results_dir / "raw.tsv"
    raw_path.unlink(missing_ok=True)
    prepare(ctx, columns)
    start_backend(ctx)
    if any("redis" in c.checks for c in columns):
        start_redis(ctx)
    columns = start_and_check(ctx, columns)
    excluded = warm_up(ctx, columns)
    rows = measure_all(ctx, columns, excluded, raw_path)
    for column in columns:
        ctx.procs.stop(column.server)
    scale: dict = {"memory": [], "threads": []}
    if not s.skip_scale:
        scale["memory"] = scale_memory(ctx)
        for m in scale["memory"]:
            append_tsv_dict(s.results_dir / "scale.tsv", m)
        scale["threads"] = scale_threads(ctx)
        for r in scale["threads"]:
            append_tsv(raw_path, r)
    ctx.procs.stop_all()
    micro = run_micro(ctx, s.results_dir) if not s.skip_micro else {}
    charts = draw_charts(ctx, summarize(rows), [c.name for c in columns], started)
    report = write_report(ctx, started, columns, rows, scale, micro, charts)
    (s.results_dir / "report.md").write_text(report)
    print_summary(ctx, rows, scale, micro, columns)
    log(f"report: {s.results_dir / 'report.md'}")


def append_tsv_dict(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a") as out:
        if new:
            out.write("\t".join(row) + "\n")
        out.write("\t".join(str(v) for v in row.values()) + "\n")


def print_summary(ctx: Context, rows: list[dict], scale: dict, micro: dict, columns: list[Column]) -> None:
    stats = summarize(rows)
    names = [c.name for c in columns]
    print()
    for scenario in ctx.settings.scenarios:
        print(f"{scenario.label}:")
        for name in names:
            st = stats.get((name, scenario.id))
            if st:
                vs = "  ".join(f"×{b} {fmt(ratio(stats, name, b, scenario.id))}"
                               for b in ("gatewayd", "nginx", "haproxy") if (b, scenario.id) in stats and b != name)
                print(f"  {name:24} {st.rps:9,.0f} req/s  p99 {st.p99_us / 1000:6.2f} ms  {st.cpu:6.1f} µs/req  {vs}")
    print("\nGoals (issue 5):")
    for line in headline_goals(stats, scale, micro):
        print("  " + line.replace("**", ""))


def stop_on_signal(signum: int, _frame) -> None:
    log(f"{signal.Signals(signum).name}: stopping every process started here")
    sys.exit(128 + signum)


def main(argv: list[str]) -> int:
    settings = parse_settings(argv)
    tmp = Path(tempfile.mkdtemp(prefix="obsgw-suite."))
    tmp.chmod(0o711)  # nginx workers (user nobody when started as root) reach their temp paths inside
    (tmp / "logs").mkdir()
    ctx = Context(settings, tmp, Ports(settings.base_port), Processes(), programs=find_programs(settings))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        run(ctx)
        return 0
    except SuiteError as e:
        log(f"ERROR: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        ctx.procs.stop_all()
        if settings.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
