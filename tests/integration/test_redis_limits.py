"""Rate limits kept in Redis ("store": "redis"), through real gatewayd processes and a real redis-server.

- A fleet: two gatewayd processes (2 io threads each) sharing one Redis enforce one global limit: exactly N of a
  per-hour limit in total, and a per-second limit within 5% of burst + rate x elapsed under concurrent load.
- Redis stopped mid-run: on_store_failure local (in-process buckets, per gateway), fail_open (everything passes),
  fail_closed (503 rate_limit_unavailable, Retry-After: 1); obsgw_rate_limit_store_errors_total counts every
  decision Redis could not make; Redis restarted on the same port: the reconnect backoff is bounded and decisions
  come from Redis again (one budget for the fleet).
- A slow Redis (DEBUG SLEEP longer than timeout_ms): the failure mode applies within the budget, then normal
  again; SCRIPT FLUSH (NOSCRIPT) costs at most one decision per io thread.
- The keys: the key_prefix, a TTL no longer than the bucket needs; AUTH with an ACL user, SELECT.
- Refunds (a request refused by a later limiter gives its charge back in Redis) and reloads (a new key prefix).
- gatewayd --check: "store": "redis" needs the top-level "redis" section; that section's keys are checked.

Every limit name is used by one test only. The tests that stop Redis restore it (and wait for every io thread to
reconnect) before they end; setUp restores it as well if an earlier test failed half-way. Each class runs a
redis-server of its own (redis_server.py), on a free loopback port, without persistence.

Decisions are observed on the client side: the status, and for refusals the JSON error code. The upstream is a
minimal raw keep-alive server (the standard library's HTTP server waits ~40 ms per response on Nagle and delayed
ACKs, far too slow to saturate a limit of 200 requests per second)."""

import collections
import itertools
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

from harness import (rate_limit_spec, Gateway, HttpConnection, concurrently, make_config, metric_value, request, route,
                     run_check, upstream_entry, wait_until)
from redis_server import RedisClient, RedisServer
from upstream import RawUpstream, read_request_head

ERRORS = 'obsgw_rate_limit_store_errors_total{store="redis"}'
HIST = "obsgw_rate_limit_store_duration_seconds"
CONNECTED = "redis connected"
LOST = "redis connection lost or refused"
HOUR_MS = 3600 * 1000


# ---------------------------------------------------------------------------------------------------------
# helpers


def limit(name, rate, per="hour", key="global", **extra):
    return rate_limit_spec(name, rate, per, key, **extra)


def redis_limit(*limits, on_store_failure=None, **options):
    policy = {"type": "rate_limit", "store": "redis", "limits": list(limits)}
    if on_store_failure is not None:
        policy["on_store_failure"] = on_store_failure
    policy.update(options)
    return policy


def _fast_handler(conn, up):
    """Keep-alive HTTP/1.1: each request head (GET, no body) gets `200 ok` in one write."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    while True:
        head = read_request_head(conn, buf)
        if head is None:
            return
        up.record(head[1].split("?")[0])
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")


def fast_upstream():
    return RawUpstream(_fast_handler)


def upstream_hits(up, path):
    with up.lock:
        return sum(1 for p in up.received if p == path)


def gateway_config(up, routes, redis_section, threads=2):
    cfg = make_config({"up": upstream_entry(up.url)}, routes, server={"threads": threads},
                      logging={"access_log": False})
    cfg["redis"] = redis_section
    return cfg


def get(gw, path, headers=None):
    """One request on a fresh connection (the kernel spreads those over the io threads); .latency in seconds."""
    t0 = time.monotonic()
    r = request(gw.port, "GET", path, headers)
    r.latency = time.monotonic() - t0
    return r


def error_code(r):
    try:
        return r.json().get("error")
    except ValueError:
        return None


def store_errors(gw):
    return metric_value(gw.metrics(), ERRORS)


def log_lines(gw, msg, start=0):
    with gw._cond:
        return [l for l in gw.lines[start:] if l.get("msg") == msg]


def wait_connected(gateways, marks, probe, timeout=5.0):
    """Sends probe requests (fresh connections, so both io threads get some) until every io thread of every
    gateway has logged "redis connected" after its log index in `marks`. `probe` is a path, or a function that
    sends one request to the gateway it is given. Returns the seconds it took."""
    send = probe if callable(probe) else (lambda gw: get(gw, probe))
    started = time.monotonic()
    deadline = started + timeout
    while True:
        pending = [gw for gw, mark in zip(gateways, marks)
                   if len(log_lines(gw, CONNECTED, mark)) < gw.config["server"]["threads"]]
        if not pending:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"not every io thread reconnected to Redis within {timeout}s: "
                f"{[(gw.pid, len(log_lines(gw, CONNECTED, m))) for gw, m in zip(gateways, marks)]}; "
                f"last log lines: {pending[0].lines[-5:]}")
        for gw in pending:
            send(gw)
        time.sleep(0.01)


class HammerRun:
    """What hammer() saw: statuses per gateway and in all, seconds from the first request to the last answer,
    and up to 3 answers per client thread that were neither 200 nor 429 rate_limited."""

    def __init__(self, per_gateway, elapsed, unexpected):
        self.per_gateway = per_gateway
        self.total = sum(per_gateway, collections.Counter())
        self.elapsed = elapsed
        self.unexpected = unexpected


def hammer(gateways, path, threads, window, cap):
    """`threads` keep-alive clients (thread i on gateways[i % len]) send GET `path` back to back for `window`
    seconds (at most `cap` requests each), all starting together. Fails the calling test (by raising) when a
    client thread raised."""
    barrier = threading.Barrier(threads)
    results = [None] * threads
    failures = []

    def worker(i):
        gw = gateways[i % len(gateways)]
        counts = collections.Counter()
        first = last = None
        other = []
        conn = HttpConnection(gw.port)
        try:
            barrier.wait(10)
            end = time.monotonic() + window
            for _ in range(cap):
                t0 = time.monotonic()
                if t0 >= end:
                    break
                conn.request("GET", path)
                r = conn.read_response()
                last = time.monotonic()
                if first is None:
                    first = t0
                counts[r.status] += 1
                if r.status != 200 and (r.status != 429 or error_code(r) != "rate_limited"):
                    other.append(r)
                if (r.header("Connection") or "").lower() == "close":
                    conn.close()
                    conn = HttpConnection(gw.port)
        except Exception as e:  # reported below: a thread's exception must fail the test
            failures.append(repr(e))
        finally:
            conn.close()
        results[i] = (first, last, counts, other[:3])

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(window + 30)
    if failures or any(r is None for r in results):
        raise AssertionError(f"client threads failed: {failures}")
    per_gateway = [collections.Counter() for _ in gateways]
    for i, (_, _, counts, _) in enumerate(results):
        per_gateway[i % len(gateways)].update(counts)
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    return HammerRun(per_gateway, elapsed, [r[3] for r in results if r[3]])


class Histogram:
    """The store-duration histogram of one gateway at one moment."""

    def __init__(self, gw):
        text = gw.metrics()
        self.count = metric_value(text, f"{HIST}_count")
        self.le = {b: metric_value(text, f'{HIST}_bucket{{le="{b}"}}') for b in ("0.01", "0.1")}


# ---------------------------------------------------------------------------------------------------------
# two gateways, one Redis


class FleetTest(unittest.TestCase):
    """Two gatewayd processes with the same config (2 io threads each) share one Redis: one budget for all."""

    PREFIX = "it-fleet:"

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer.start()
        cls.addClassCleanup(cls.redis.close)
        cls.up = fast_upstream()
        cls.addClassCleanup(cls.up.stop)
        routes = [
            route("warm", "up", path="/warm", tag=False,
                  policies=[redis_limit(limit("fleet-warm", 100000, per="second"))]),
            # fail_closed: a decision Redis could not make shows as a 503 instead of hiding in a local bucket
            route("rate", "up", path="/rate", tag=False, policies=[
                redis_limit(limit("fleet-rate", 200, per="second", burst=200), on_store_failure="fail_closed")]),
            route("exact", "up", path="/exact", tag=False, policies=[
                redis_limit(limit("fleet-exact", 20), on_store_failure="fail_closed")]),
            route("keys", "up", path="/keys", tag=False, policies=[
                redis_limit(limit("keys-ip", 5, key="client_ip"),
                            limit("keys-short", 1, per=None, per_ms=500, burst=5),
                            on_store_failure="fail_closed")]),
        ]
        redis = {"address": cls.redis.address, "timeout_ms": 1000, "key_prefix": cls.PREFIX}
        cfg = gateway_config(cls.up, routes, redis)
        cls.gws = []
        for _ in range(2):
            gw = Gateway.start(cfg)
            cls.addClassCleanup(gw.stop)
            cls.gws.append(gw)
        # Every io thread connects on its first request: warm all four up, so that no first decision waits.
        wait_connected(cls.gws, [0, 0], "/warm")

    def test_per_hour_limit_is_exact_across_the_fleet(self):
        """20 per hour, global: 40 requests from 8 threads at once, spread over both gateways (fresh connections,
        so over all four io threads) -> exactly 20 pass and 20 get 429 rate_limited; the admitted responses count
        RateLimit-Remaining down 19..0, each value exactly once (every decision saw the previous one, whichever
        gateway made it); the upstream saw 20; each gateway's obsgw_rate_limited_total counts the 429s it sent."""
        threads, per_thread = 8, 5
        responses = [(i % 2, r) for i, r in concurrently(threads, per_thread, lambda i: get(self.gws[i % 2], "/exact"))]
        self.assertEqual(len(responses), threads * per_thread)
        statuses = collections.Counter(r.status for _, r in responses)
        self.assertEqual(statuses, {200: 20, 429: 20}, statuses)
        remaining = sorted(int(r.header("RateLimit-Remaining")) for _, r in responses if r.status == 200)
        self.assertEqual(remaining, list(range(20)))
        for _, r in responses:
            if r.status == 429:
                self.assertEqual(error_code(r), "rate_limited", r)
                self.assertTrue(1 <= int(r.header("Retry-After")) <= 180, r)
        self.assertEqual(upstream_hits(self.up, "/exact"), 20)
        # each gateway counted the refusals it made
        series = 'obsgw_rate_limited_total{limit="fleet-exact"}'
        self.assertEqual([metric_value(gw.metrics(), series) for gw in self.gws],
                         [sum(1 for g, r in responses if g == i and r.status == 429) for i in range(2)])
        self.assertEqual([store_errors(gw) for gw in self.gws], [0, 0])
        # one more from either gateway is refused too
        for gw in self.gws:
            self.assertEqual(get(gw, "/exact").status, 429)
        # The bucket: 20 x 180 s ahead of the first request; the key lives no longer than that (+1 ms).
        pttl = self.redis.call("PTTL", self.PREFIX + "fleet-exact\x1f")
        self.assertTrue(HOUR_MS - 30_000 < pttl <= HOUR_MS + 1, pttl)

    def test_global_rate_is_enforced_within_5_percent_across_the_fleet(self):
        """200 per second, burst 200, global, hammered for 3 s by 6 keep-alive client threads (3 per gateway, at
        most 6000 requests each, far above the rate): the admitted count is within 5% of what GCRA lets through
        from the first request to the last, burst + rate x elapsed; nothing is refused with 503 (every decision
        came from Redis); both gateways admitted and refused; the 429s the clients saw are the ones the gateways
        counted in obsgw_rate_limited_total; the upstream saw exactly the admitted ones."""
        rate, burst, window, threads, cap = 200, 200, 3.0, 6, 6000
        run = hammer(self.gws, "/rate", threads, window, cap)
        per_gw, total, elapsed = run.per_gateway, run.total, run.elapsed
        admitted, refused = total[200], total[429]
        expected = burst + rate * elapsed
        figures = (f"admitted {admitted}, expected {expected:.1f} (burst {burst} + {rate}/s x {elapsed:.3f} s), "
                   f"deviation {100.0 * (admitted - expected) / expected:+.2f}%; refused {refused}; "
                   f"per gateway {[dict(c) for c in per_gw]}")
        print(f"\n[fleet accuracy] {figures}", file=sys.stderr)
        self.assertEqual(run.unexpected, [], "responses other than 200 and 429 rate_limited")
        self.assertEqual(set(total), {200, 429}, figures)
        # The clients offered far more than the rate, else the figure says nothing about the limit.
        self.assertGreater(refused, 2 * admitted, "the clients did not saturate the limit: " + figures)
        self.assertLessEqual(abs(admitted - expected), 0.05 * expected, figures)
        for c in per_gw:
            self.assertGreater(c[200], 0, figures)
            self.assertGreater(c[429], 0, figures)
        counted = sum(metric_value(gw.metrics(), 'obsgw_rate_limited_total{limit="fleet-rate"}') for gw in self.gws)
        self.assertEqual(counted, refused)
        self.assertEqual(upstream_hits(self.up, "/rate"), admitted)
        self.assertEqual([store_errors(gw) for gw in self.gws], [0, 0])
        # every one of those decisions went through the store and was timed
        decisions = sum(Histogram(gw).count for gw in self.gws)
        self.assertGreaterEqual(decisions, admitted + refused)

    def test_keys_carry_the_prefix_and_expire_with_the_bucket(self):
        """Two limits on /keys: 5 per hour per client address, and 1 per 500 ms (burst 5) global. After two
        requests Redis holds exactly "<key_prefix><limit name>\\x1f<key value>" for each (the global key's value
        part is empty), nothing without the prefix; each key's PTTL is what its bucket needs: 2 x 720 s for the
        hourly one (+1 ms at most), 2 x 500 ms for the short one, which is gone once that has passed."""
        for _ in range(2):
            r = get(self.gws[0], "/keys")
            self.assertEqual(r.status, 200, r)
        ip_key = self.PREFIX + "keys-ip\x1f127.0.0.1"
        short_key = self.PREFIX + "keys-short\x1f"
        keys = set(self.redis.call("KEYS", "*keys-*"))
        self.assertEqual(keys, {ip_key, short_key})
        self.assertEqual([k for k in self.redis.call("KEYS", "*") if not k.startswith(self.PREFIX)], [])
        pttl = self.redis.call("PTTL", ip_key)
        self.assertTrue(2 * 720_000 - 10_000 < pttl <= 2 * 720_000 + 1, pttl)
        pttl = self.redis.call("PTTL", short_key)
        self.assertTrue(0 < pttl <= 2 * 500 + 1, pttl)
        wait_until(lambda: self.redis.call("EXISTS", short_key) == 0, 2.0, 0.02, "the short bucket's key to expire")
        self.assertEqual(self.redis.call("EXISTS", ip_key), 1)
        # the stored value is the bucket's theoretical arrival time, in microseconds on Redis's clock
        redis_now_us = (lambda t: int(t[0]) * 1_000_000 + int(t[1]))(self.redis.call("TIME"))
        tat = int(self.redis.call("GET", ip_key))
        self.assertTrue(0 < tat - redis_now_us <= 2 * 720_000_000, tat - redis_now_us)


# ---------------------------------------------------------------------------------------------------------
# Redis stopped and restarted


class RedisOutageTest(unittest.TestCase):
    """Redis stops while two gateways run, then comes back on the same port. Each on_store_failure mode has its
    own route and a 5-per-hour global limit of its own."""

    PREFIX = "it-outage:"
    MAX_BACKOFF_MS = 400

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer.start()
        cls.addClassCleanup(cls.redis.close)
        cls.up = fast_upstream()
        cls.addClassCleanup(cls.up.stop)
        routes = [route(mode, "up", path="/" + mode, tag=False,
                        policies=[redis_limit(limit("outage-" + mode, 5), on_store_failure=mode)])
                  for mode in ("local", "fail_open", "fail_closed")]
        routes.append(route("probe", "up", path="/probe", tag=False, policies=[
            redis_limit(limit("outage-probe", 100000, per="second"), on_store_failure="fail_closed")]))
        redis = {"address": cls.redis.address, "timeout_ms": 200, "connect_timeout_ms": 200,
                 "max_backoff_ms": cls.MAX_BACKOFF_MS, "key_prefix": cls.PREFIX}
        cfg = gateway_config(cls.up, routes, redis)
        cls.gws = []
        for _ in range(2):
            gw = Gateway.start(cfg)
            cls.addClassCleanup(gw.stop)
            cls.gws.append(gw)
        wait_connected(cls.gws, [0, 0], "/probe")

    def setUp(self):
        if not self.redis.running:  # an earlier test failed with Redis down
            marks = [gw.log_count() for gw in self.gws]
            self.redis.start_process()
            wait_connected(self.gws, marks, "/probe")

    def alternate(self, path, n):
        """n requests, alternately to each gateway."""
        return [get(self.gws[i % 2], path) for i in range(n)]

    def run_outage(self, mode, check_down):
        path, key = "/" + mode, self.PREFIX + "outage-" + mode + "\x1f"
        # 1. Redis decides: one budget of 5 for both gateways.
        rs = self.alternate(path, 7)
        self.assertEqual([r.status for r in rs], [200] * 5 + [429] * 2, rs)
        self.assertEqual(self.redis.call("EXISTS", key), 1)

        # 2. Redis stops: every io thread notices (its connection is closed), then each decision fails at once.
        marks = [gw.log_count() for gw in self.gws]
        errors = [store_errors(gw) for gw in self.gws]
        hits = upstream_hits(self.up, path)
        self.redis.stop()
        for gw, mark in zip(self.gws, marks):
            wait_until(lambda: len(log_lines(gw, LOST, mark)) >= 2, 3.0, 0.02,
                       "both io threads to log the lost Redis connection")
        down = [[get(gw, path) for _ in range(10)] for gw in self.gws]
        for rs in down:
            for r in rs:
                self.assertLess(r.latency, 1.0, "a decision waited for a Redis that is down")
            check_down(rs)
        self.assertEqual([store_errors(gw) - e for gw, e in zip(self.gws, errors)], [10, 10])
        passed = sum(1 for rs in down for r in rs if r.status == 200)
        self.assertEqual(upstream_hits(self.up, path) - hits, passed)

        # 3. Redis is back on the same port (empty: no persistence). Each io thread reconnects on a request once
        #    its backoff (100 ms doubling to max_backoff_ms, plus up to half of it as jitter) has passed.
        marks = [gw.log_count() for gw in self.gws]
        self.redis.start_process()
        took = wait_connected(self.gws, marks, "/probe", timeout=5.0)
        self.assertLess(took, 3 * self.MAX_BACKOFF_MS / 1000 + 1.0, "reconnecting took longer than the backoff")

        # 4. Redis decides again: a fresh budget of 5 for the whole fleet, whatever the local buckets say.
        errors = [store_errors(gw) for gw in self.gws]
        rs = self.alternate(path, 7)
        self.assertEqual([r.status for r in rs], [200] * 5 + [429] * 2, rs)
        for r in rs[5:]:
            self.assertEqual(error_code(r), "rate_limited", r)
        self.assertEqual([store_errors(gw) - e for gw, e in zip(self.gws, errors)], [0, 0])
        self.assertEqual(self.redis.call("EXISTS", key), 1)

    def test_local_fallback_enforces_the_limit_per_gateway(self):
        """on_store_failure local: while Redis is down each gateway applies the limit in its own buckets: exactly 5
        of 10 pass on each (10 in all: the fleet budget is not shared then), the rest get 429 rate_limited. Once
        Redis is back, the shared budget applies again: 5 in all, although the local buckets are empty."""
        def check(rs):
            self.assertEqual([r.status for r in rs], [200] * 5 + [429] * 5, rs)
            for r in rs[5:]:
                self.assertEqual(error_code(r), "rate_limited", r)
        self.run_outage("local", check)

    def test_fail_open_lets_everything_through_while_redis_is_down(self):
        """on_store_failure fail_open: with the Redis budget spent, all 10 requests to each gateway pass while
        Redis is down; once it is back, 5 in all and then 429 again."""
        def check(rs):
            self.assertEqual([r.status for r in rs], [200] * 10, rs)
        self.run_outage("fail_open", check)

    def test_fail_closed_refuses_with_503_while_redis_is_down(self):
        """on_store_failure fail_closed: every request gets 503 rate_limit_unavailable with Retry-After: 1 and
        reaches no upstream; once Redis is back, 5 in all and then 429."""
        def check(rs):
            for r in rs:
                self.assertEqual((r.status, error_code(r), r.header("Retry-After")),
                                 (503, "rate_limit_unavailable", "1"), r)
        self.run_outage("fail_closed", check)


# ---------------------------------------------------------------------------------------------------------
# a slow Redis


class SlowRedisTest(unittest.TestCase):
    """timeout_ms 20 while Redis sleeps 500 ms (DEBUG SLEEP from a connection of the test's own): the decisions
    give up at the budget and the failure mode applies; Redis then catches up and decides again."""

    PREFIX = "it-slow:"
    SLEEP = 0.5
    FAST = 0.25  # well below the 0.5 s sleep: the request did not wait for Redis

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer.start()
        cls.addClassCleanup(cls.redis.close)
        cls.up = fast_upstream()
        cls.addClassCleanup(cls.up.stop)
        routes = [
            route("warm", "up", path="/warm", tag=False,
                  policies=[redis_limit(limit("slow-warm", 100000, per="second"))]),
            route("local", "up", path="/local", tag=False,
                  policies=[redis_limit(limit("slow-local", 1), on_store_failure="local")]),
            route("open", "up", path="/open", tag=False,
                  policies=[redis_limit(limit("slow-open", 1), on_store_failure="fail_open")]),
            route("closed", "up", path="/closed", tag=False,
                  policies=[redis_limit(limit("slow-closed", 100000, per="second"), on_store_failure="fail_closed")]),
            route("ghost", "up", path="/ghost", tag=False,
                  policies=[redis_limit(limit("slow-ghost", 2), on_store_failure="fail_closed")]),
        ]
        cfg = gateway_config(cls.up, routes, {"address": cls.redis.address, "timeout_ms": 20,
                                              "key_prefix": cls.PREFIX})
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        wait_connected([cls.gw], [0], "/warm")

    def sleeping_redis(self):
        """Starts DEBUG SLEEP on a connection of its own and gives it 50 ms to begin. Returns (an event set when
        Redis answers it, a function that waits for that answer and checks it is OK)."""
        done = threading.Event()
        answer = []
        client = RedisClient(self.redis.port, timeout=10)

        def run():
            try:
                answer.append(client.call("DEBUG", "SLEEP", str(self.SLEEP)))
            except Exception as e:
                answer.append(repr(e))
            finally:
                done.set()
                client.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        time.sleep(0.05)  # the command is on its way (loopback): Redis is asleep now

        def finish():
            t.join(10)
            self.assertEqual(answer, ["OK"])
        self.addCleanup(t.join, 10)
        return done, finish

    def until_refused(self, path, n=10):
        """Requests until Redis refuses one (its limit of 1 per hour is spent); bounded."""
        for _ in range(n):
            r = get(self.gw, path)
            if r.status == 429:
                self.assertEqual(error_code(r), "rate_limited", r)
                return r
            self.assertEqual(r.status, 200, r)
        self.fail(f"{path}: no 429 after {n} requests")

    def test_fail_closed_gives_up_at_the_budget(self):
        """fail_closed: while Redis sleeps, three requests each get 503 rate_limit_unavailable with Retry-After: 1
        in well under the sleep, before Redis answers the DEBUG SLEEP; each is one store error and one timed
        decision of at least the 20 ms budget and at most 100 ms; afterwards the requests pass again."""
        wait_until(lambda: get(self.gw, "/closed").status == 200, 2.0, 0.02, "Redis to decide")
        errors, hist = store_errors(self.gw), Histogram(self.gw)
        done, finish = self.sleeping_redis()
        rs = [get(self.gw, "/closed") for _ in range(3)]
        self.assertFalse(done.is_set(), "Redis answered DEBUG SLEEP before the requests were over")
        for r in rs:
            self.assertEqual((r.status, error_code(r), r.header("Retry-After")),
                             (503, "rate_limit_unavailable", "1"), r)
            self.assertLess(r.latency, self.FAST, r)
        self.assertEqual(store_errors(self.gw) - errors, 3)
        after = Histogram(self.gw)
        self.assertEqual(after.count - hist.count, 3)
        self.assertEqual(after.le["0.01"] - hist.le["0.01"], 0, "a timed-out decision gave up before its budget")
        self.assertEqual(after.le["0.1"] - hist.le["0.1"], 3, "a timed-out decision took longer than 100 ms")
        finish()
        wait_until(lambda: get(self.gw, "/closed").status == 200, 2.0, 0.02, "Redis to decide again")

    def test_fail_open_lets_requests_through_while_redis_is_slow(self):
        """fail_open: with the 1-per-hour budget spent in Redis, three requests pass quickly while Redis sleeps;
        once it has caught up the limit refuses again."""
        self.until_refused("/open")
        errors = store_errors(self.gw)
        done, finish = self.sleeping_redis()
        rs = [get(self.gw, "/open") for _ in range(3)]
        self.assertFalse(done.is_set())
        self.assertEqual([r.status for r in rs], [200] * 3, rs)
        for r in rs:
            self.assertLess(r.latency, self.FAST, r)
        self.assertEqual(store_errors(self.gw) - errors, 3)
        finish()
        wait_until(lambda: get(self.gw, "/open").status == 429, 2.0, 0.02, "Redis to refuse again")

    def test_local_fallback_applies_while_redis_is_slow(self):
        """local: with the budget spent in Redis, the first request while Redis sleeps passes on the in-process
        bucket (still full), the next two are refused by it (429 rate_limited), all quickly; afterwards the
        decisions come from Redis again (a request no longer counts as a store error) and refuse."""
        self.until_refused("/local")
        errors = store_errors(self.gw)
        done, finish = self.sleeping_redis()
        rs = [get(self.gw, "/local") for _ in range(3)]
        self.assertFalse(done.is_set())
        self.assertEqual([r.status for r in rs], [200, 429, 429], rs)
        for r in rs:
            self.assertLess(r.latency, self.FAST, r)
        self.assertEqual(store_errors(self.gw) - errors, 3)
        finish()

        def decided_by_redis():
            before = store_errors(self.gw)
            r = get(self.gw, "/local")
            return store_errors(self.gw) == before and r.status == 429
        wait_until(decided_by_redis, 2.0, 0.02, "Redis to decide again")

    def test_script_flush_costs_at_most_one_decision_per_thread(self):
        """SCRIPT FLUSH on the server: the next EVALSHA gets NOSCRIPT, that decision fails (503 here, one store
        error) and the script is loaded again on the same connection; of 12 requests at most one per io thread
        fails and the last ones all pass, without any reconnection."""
        wait_until(lambda: get(self.gw, "/closed").status == 200, 2.0, 0.02, "Redis to decide")
        errors = store_errors(self.gw)
        mark = self.gw.log_count()
        self.assertEqual(self.redis.call("SCRIPT", "FLUSH"), "OK")
        statuses = [get(self.gw, "/closed").status for _ in range(12)]
        failed = store_errors(self.gw) - errors
        self.assertEqual(statuses.count(503), failed, statuses)
        self.assertTrue(1 <= failed <= 2, statuses)
        self.assertEqual(statuses[-6:], [200] * 6, statuses)
        self.assertEqual(log_lines(self.gw, CONNECTED, mark) + log_lines(self.gw, LOST, mark), [])

    def test_requests_refused_while_redis_is_slow_do_not_spend_the_budget(self):
        """fail_closed with 2 per hour: the two requests that get 503 while Redis sleeps were never let through,
        so once Redis has caught up the budget is still whole: 2 pass, then 429 (a timed-out EVALSHA that Redis
        runs late is refunded)."""
        done, finish = self.sleeping_redis()
        rs = [get(self.gw, "/ghost") for _ in range(2)]
        self.assertFalse(done.is_set())
        self.assertEqual([(r.status, error_code(r)) for r in rs], [(503, "rate_limit_unavailable")] * 2, rs)
        finish()
        time.sleep(0.1)  # Redis works through what queued up while it slept
        rs = [get(self.gw, "/ghost") for _ in range(3)]
        self.assertEqual([r.status for r in rs], [200, 200, 429],
                         [(r.status, r.json().get("message") if r.status != 200 else "") for r in rs])


# ---------------------------------------------------------------------------------------------------------
# refunds and reloads


class RedisRefundTest(unittest.TestCase):
    """A top-level global limit (3 per hour) and a route's per-client limit (1 per hour), both in Redis, on two
    gateways: a request that the per-client limit refuses gives its global charge back (a fire-and-forget EVALSHA
    with a negative cost on the same connection), so a refused client does not drain the fleet's budget."""

    PREFIX = "it-refund:"

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer.start()
        cls.addClassCleanup(cls.redis.close)
        cls.up = fast_upstream()
        cls.addClassCleanup(cls.up.stop)
        routes = [route("r", "up", path="/r", tag=False, policies=[
            redis_limit(limit("refund-client", 1, key="client_ip"), on_store_failure="fail_closed")])]
        cfg = gateway_config(cls.up, routes, {"address": cls.redis.address, "timeout_ms": 500,
                                              "key_prefix": cls.PREFIX})
        cfg["client_ip"] = {"trusted_proxies": ["127.0.0.1"]}
        cfg["policies"] = [redis_limit(limit("refund-everyone", 3), on_store_failure="fail_closed")]
        cls.gws = []
        for _ in range(2):
            gw = Gateway.start(cfg)
            cls.addClassCleanup(gw.stop)
            cls.gws.append(gw)
        # Warm up every io thread, each probe from a client address of its own (so that no refund is on its way
        # afterwards), then start the shared budget afresh.
        n = itertools.count(1)

        def probe(gw):
            k = next(n)
            get(gw, "/r", {"X-Forwarded-For": f"10.1.{k // 250}.{k % 250}"})
        wait_connected(cls.gws, [0, 0], probe)
        cls.redis.call("DEL", cls.PREFIX + "refund-everyone\x1f")

    def test_refused_client_does_not_spend_the_fleet_budget(self):
        """10.0.0.1 four times over both gateways: 200, then 429 by its own limit three times; the global key is
        charged once (PTTL at most 1200 s + 1 ms once the refunds are in). Two other clients pass, the next one is
        refused by the global limit: 3 in all, whichever gateway."""
        get_ = lambda i, client: get(self.gws[i % 2], "/r", {"X-Forwarded-For": client})
        rs = [get_(i, "10.0.0.1") for i in range(4)]
        self.assertEqual([r.status for r in rs], [200, 429, 429, 429], rs)
        for r in rs[1:]:
            self.assertIn('"refund-client"', r.json()["message"])
        key = self.PREFIX + "refund-everyone\x1f"
        wait_until(lambda: 0 < self.redis.call("PTTL", key) <= 1_200_001, 2.0, 0.02,
                   "the refunds to reach Redis (one charge of 1200 s left)")
        rs = [get_(i, f"10.0.0.{i + 2}") for i in range(3)]
        self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
        self.assertIn('"refund-everyone"', rs[2].json()["message"])
        self.assertEqual([store_errors(gw) for gw in self.gws], [0, 0])


class RedisReloadTest(unittest.TestCase):
    """A reload that changes the "redis" section (here the key prefix) makes a new store with new connections."""

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer.start()
        cls.addClassCleanup(cls.redis.close)
        cls.up = fast_upstream()
        cls.addClassCleanup(cls.up.stop)

    def start(self):
        routes = [route("warm", "up", path="/warm", tag=False,
                        policies=[redis_limit(limit("reload-warm", 100000, per="second"))]),
                  route("r", "up", path="/r", tag=False,
                        policies=[redis_limit(limit("reload-hourly", 3), on_store_failure="fail_closed")])]
        cfg = gateway_config(self.up, routes, {"address": self.redis.address, "timeout_ms": 500,
                                               "key_prefix": "it-reload-a:"})
        gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        wait_connected([gw], [0], "/warm")
        return gw, cfg

    def reload_prefix(self, gw, cfg, prefix):
        cfg = dict(cfg, redis=dict(cfg["redis"], key_prefix=prefix))
        mark = gw.log_count()
        self.assertEqual(gw.reload(cfg)["msg"], "configuration reloaded")
        wait_connected([gw], [mark], "/warm")  # both io threads opened the new store's connection

    def gateway_connections(self):
        """Connections to Redis other than the fixture's own (which is running CLIENT LIST)."""
        return [l for l in self.redis.call("CLIENT", "LIST").splitlines() if "cmd=client|list" not in l]

    def test_reload_uses_the_new_key_prefix(self):
        """After the reload the bucket lives under the new prefix: a fresh budget of 3 (the old key is untouched)."""
        gw, cfg = self.start()
        self.redis.call("DEL", "it-reload-a:reload-hourly\x1f", "it-reload-b:reload-hourly\x1f")
        self.assertEqual([get(gw, "/r").status for _ in range(4)], [200, 200, 200, 429])
        self.reload_prefix(gw, cfg, "it-reload-b:")
        self.assertEqual([get(gw, "/r").status for _ in range(4)], [200, 200, 200, 429])
        self.assertEqual(self.redis.call("EXISTS", "it-reload-a:reload-hourly\x1f"), 1)
        self.assertEqual(self.redis.call("EXISTS", "it-reload-b:reload-hourly\x1f"), 1)

    def test_reload_closes_the_connections_of_the_old_settings(self):
        """Before the reload the gateway holds one connection per io thread (2); after the reload, once both
        threads use the new store, the old store's connections are closed: still 2 in all."""
        gw, cfg = self.start()
        wait_until(lambda: len(self.gateway_connections()) == 2, 2.0, 0.02, "one connection per io thread")
        self.reload_prefix(gw, cfg, "it-reload-c:")
        deadline = time.monotonic() + 1.0
        while len(self.gateway_connections()) > 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        conns = self.gateway_connections()
        self.assertEqual(len(conns), 2, "connections from the gateway 1 s after the reload:\n" + "\n".join(conns))


# ---------------------------------------------------------------------------------------------------------
# AUTH (ACL user, password file or variable) and SELECT


class HoldingProxy:
    """A TCP proxy between gatewayd and redis-server that, once armed, holds Redis's replies back for `hold`
    seconds from the next EVALSHA it forwards, and counts the EVALSHA commands the gateway sends meanwhile."""

    def __init__(self, target_port, hold):
        self.target_port = target_port
        self.hold = hold
        self.lock = threading.Lock()
        self.armed = False
        self.hold_until = 0.0
        self.sent_while_held = 0
        self.connections = 0
        self.sockets = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self):
        with self.lock:
            self.armed, self.hold_until, self.sent_while_held = True, 0.0, 0

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += 1
                self.sockets += [client, server]
            threading.Thread(target=self._to_redis, args=(client, server), daemon=True).start()
            threading.Thread(target=self._to_gateway, args=(server, client), daemon=True).start()

    def _to_redis(self, src, dst):
        tail = b""
        try:
            while data := src.recv(65536):
                window = tail + data
                n = window.count(b"EVALSHA") - tail.count(b"EVALSHA")  # a name split across two reads counts once
                tail = window[-6:]
                with self.lock:
                    now = time.monotonic()
                    if n and self.armed and self.hold_until == 0.0:
                        self.hold_until = now + self.hold
                    if now < self.hold_until:
                        self.sent_while_held += n
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def _to_gateway(self, src, dst):
        try:
            while data := src.recv(65536):
                with self.lock:
                    wait = self.hold_until - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            dst.close()

    def stop(self):
        self.stopped = True
        for s in [self.listener] + self.sockets:  # shutdown wakes the threads blocked in accept() and recv()
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class RedisPipeliningTest(unittest.TestCase):
    def test_decisions_are_pipelined_on_one_connection(self):
        """One io thread, one Redis connection (through a proxy that holds Redis's replies for 400 ms from the
        first EVALSHA on): 12 concurrent requests all send their EVALSHA while the first is unanswered (pipelined,
        not one at a time), all on that one connection, and all are decided correctly once the replies come: a
        limit of 8 per hour admits 8 and refuses 4."""
        redis = RedisServer.start()
        self.addCleanup(redis.close)
        proxy = HoldingProxy(redis.port, hold=0.4)
        self.addCleanup(proxy.stop)
        up = fast_upstream()
        self.addCleanup(up.stop)
        routes = [route("pipe", "up", path="/pipe", tag=False, policies=[
            redis_limit(limit("pipelined", 8), on_store_failure="fail_closed")]),
            route("warm", "up", path="/warm", tag=False, policies=[redis_limit(limit("pipe-warm", 100000))])]
        gw = Gateway.start(gateway_config(up, routes, {"address": f"127.0.0.1:{proxy.port}", "timeout_ms": 2000,
                                                       "key_prefix": "it-pipe:"}, threads=1))
        self.addCleanup(gw.stop)
        self.assertEqual(get(gw, "/warm").status, 200)  # connected, script loaded
        proxy.arm()
        statuses = [r.status for _, r in concurrently(12, 1, lambda i: get(gw, "/pipe"), timeout=15)]
        self.assertEqual(sorted(statuses), [200] * 8 + [429] * 4, statuses)
        self.assertEqual(proxy.connections, 1)
        print(f"\n[pipelining] EVALSHA sent while the first reply was held: {proxy.sent_while_held} of 12",
              file=sys.stderr)
        self.assertGreaterEqual(proxy.sent_while_held, 6, "decisions went one at a time, not pipelined")


class RedisAuthTest(unittest.TestCase):
    """A Redis that requires a password, with an ACL user allowed only keys under the gateway's prefix."""

    PREFIX = "it-auth:"

    @classmethod
    def setUpClass(cls):
        cls.redis = RedisServer.start(args=["--requirepass", "admin-secret"])
        cls.addClassCleanup(cls.redis.close)
        cls.redis.call("ACL", "SETUSER", "gw", "on", ">gw-secret", "~" + cls.PREFIX + "*", "+@all")
        cls.up = fast_upstream()
        cls.addClassCleanup(cls.up.stop)
        cls.tmp = tempfile.mkdtemp(prefix="obsgw-redis-auth-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.password_file = os.path.join(cls.tmp, "password")
        with open(cls.password_file, "w") as f:
            f.write("gw-secret\n")

    def start(self, redis_options, env=None):
        routes = [route("r", "up", path="/auth", tag=False,
                        policies=[redis_limit(limit("auth-limit", 3), on_store_failure="fail_closed")])]
        section = {"address": self.redis.address, "timeout_ms": 500, "key_prefix": self.PREFIX}
        section.update(redis_options)
        gw = Gateway.start(gateway_config(self.up, routes, section), env=env)
        self.addCleanup(gw.stop)
        return gw

    def test_acl_user_with_password_file_and_database(self):
        """username + password_file + database 3: the limit works (3 pass, then 429) and its key is in database 3,
        not in 0."""
        gw = self.start({"username": "gw", "password_file": self.password_file, "database": 3})
        self.assertEqual([get(gw, "/auth").status for _ in range(4)], [200, 200, 200, 429])
        with self.redis.client() as c:
            self.assertEqual(c.call("EXISTS", self.PREFIX + "auth-limit\x1f"), 0)
            c.call("SELECT", "3")
            self.assertEqual(c.call("EXISTS", self.PREFIX + "auth-limit\x1f"), 1)
        self.assertEqual(store_errors(gw), 0)

    def test_wrong_password_is_a_store_failure(self):
        """A wrong password (password_env): the handshake fails, each request gets 503 rate_limit_unavailable
        (fail_closed) and counts as a store error; the refusal is logged with Redis's WRONGPASS."""
        gw = self.start({"username": "gw", "password_env": "OBSGW_IT_REDIS_PASSWORD", "max_backoff_ms": 100},
                        env={"OBSGW_IT_REDIS_PASSWORD": "not-the-secret"})
        for _ in range(3):
            r = get(gw, "/auth")
            self.assertEqual((r.status, error_code(r)), (503, "rate_limit_unavailable"), r)
        self.assertEqual(store_errors(gw), 3)
        line = gw.wait_for_log(lambda l: l.get("msg") == LOST, 3.0)
        self.assertIn("WRONGPASS", line.get("reason", ""), line)


# ---------------------------------------------------------------------------------------------------------
# configuration


class RedisConfigCheckTest(unittest.TestCase):
    """gatewayd --check on configs that use the Redis store (none of them needs a Redis to be running)."""

    def config(self, policy, redis=None, top_level=False):
        routes = [route("r", "up", path_prefix="/", policies=[] if top_level else [policy])]
        cfg = make_config({"up": upstream_entry("http://127.0.0.1:9")}, routes)
        if top_level:
            cfg["policies"] = [policy]
        if redis is not None:
            cfg["redis"] = redis
        return cfg

    def test_redis_store_needs_the_redis_section(self):
        """"store": "redis" without the top-level "redis" section is refused, naming the policy's store key, on a
        route and in the top-level policies."""
        policy = redis_limit(limit("a", 5))
        code, out, err, _ = run_check(self.config(policy))
        self.assertNotEqual(code, 0, out)
        self.assertIn('routes[0].policies[0].store: "redis" needs the top-level "redis" section', err)
        code, out, err, _ = run_check(self.config(policy, top_level=True))
        self.assertNotEqual(code, 0, out)
        self.assertIn('policies[0].store: "redis" needs the top-level "redis" section', err)

    def test_a_valid_redis_config_passes_without_a_server(self):
        """The same policy with a "redis" section passes --check although nothing listens on its address."""
        code, out, err, _ = run_check(self.config(redis_limit(limit("a", 5), on_store_failure="fail_open"),
                                                  {"address": "127.0.0.1:1", "timeout_ms": 20}))
        self.assertEqual(code, 0, err)
        self.assertIn("is valid", out)

    def test_redis_section_and_policy_keys_are_checked(self):
        """Problems are named by key: an unknown key, an address without a port, a timeout of 0, an unknown
        failure mode, an unknown store."""
        code, _, err, _ = run_check(self.config(redis_limit(limit("a", 5), on_store_failure="maybe"),
                                                {"address": "localhost", "timeout_ms": 0, "bogus": 1}))
        self.assertNotEqual(code, 0)
        for text in ("redis.bogus: unknown key", 'redis.address: "localhost" is not host:port',
                     "redis.timeout_ms: must be between 1 and 10000",
                     'routes[0].policies[0].on_store_failure: "maybe" is not one of local, fail_open, fail_closed'):
            self.assertIn(text, err)
        policy = redis_limit(limit("a", 5))
        policy["store"] = "memcached"
        code, _, err, _ = run_check(self.config(policy, {"address": "127.0.0.1:1"}))
        self.assertNotEqual(code, 0)
        self.assertIn('routes[0].policies[0].store: "memcached" is not one of local, redis', err)


if __name__ == "__main__":
    unittest.main()
