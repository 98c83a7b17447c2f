"""Upstream resilience through a real gatewayd: retries against flaky upstreams (tries counted at the upstream,
backoff waits measured between an answer and the next try), which requests may be repeated (idempotent methods,
bodies held whole on routes with retry.unsafe_methods, never streamed bodies), several endpoints per upstream
(round robin, least outstanding), passive ejection after consecutive failures, active health checks taking an
endpoint out and back, the max_pending circuit breaker, a burst of pushes that loses nothing while one of two
endpoints dies, and the configuration checks of the new keys.

Upstreams are ScriptedUpstream (below): a keep-alive HTTP/1.1 server on a bare socket that records every request
with the monotonic times it arrived and was answered, and answers as its query says:
    fail=N            the first N requests to this path answer fail_status (default 503), later ones 200
    status=N          always answer with this status
    delay_ms=N        wait N ms before answering (else the upstream's own `delay`)
/ready answers 200 while `ready` is true, else 503 (the active health checks' path)."""

import hashlib
import itertools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from urllib.parse import parse_qsl

from harness import (LOCALHOST, Gateway, HttpConnection, chunk_encode, free_port, make_config, metric_value, request,
                     route, run_check, upstream_entry, wait_until)
from upstream import RawUpstream, read_exact, read_request_head

# Upward slack for a measured wait: thread scheduling on a busy 2-core machine. Waits are measured from just before
# the upstream wrote its answer to the moment the next try's head was read, so they can only come out longer than
# the gateway's timer, never shorter: lower bounds are exact.
SLACK_MS = 120
_unique = itertools.count(1)


def unique(prefix):
    """A path no other request of this run uses (the scripted upstream counts requests per path)."""
    return f"{prefix}/{next(_unique)}-{time.monotonic_ns()}"


# ---------------------------------------------------------------------------------------------------------
# scripted upstream


class Arrival:
    def __init__(self, method, target, headers, body, t_arrive):
        self.method = method
        self.target = target
        self.path = target.partition("?")[0]
        self.headers = headers  # lower-case names
        self.body = body
        self.t_arrive = t_arrive
        self.t_answer = None
        self.status = None

    def __repr__(self):
        return f"<Arrival {self.method} {self.target} status={self.status}>"


class ScriptedUpstream:
    def __init__(self, name, delay=0.0, status=200, host=LOCALHOST, port=0):
        self.name = name
        self.delay = delay
        self.status = status
        self.ready = True
        self.lock = threading.Lock()
        self.arrivals = []  # requests other than the health checks, in arrival order
        self.checks = []  # (monotonic time, status answered, headers) of each /ready check
        self.per_path = {}
        self.raw = RawUpstream(self._serve, host=host, port=port)
        self.port = self.raw.port
        self.url = self.raw.url
        self.address = f"{host}:{self.port}"

    # --- for tests ---
    def for_path(self, path):
        with self.lock:
            return [a for a in self.arrivals if a.path == path]

    def count(self, prefix=""):
        with self.lock:
            return sum(1 for a in self.arrivals if a.path.startswith(prefix))

    def checks_since(self, t, status=None):
        with self.lock:
            return [c for c in self.checks if c[0] >= t and (status is None or c[1] == status)]

    def stop(self):
        self.raw.stop()

    # --- serving ---
    def _read_body(self, conn, buf, headers):
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                while b"\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return None
                    buf += data
                i = buf.index(b"\r\n")
                size = int(bytes(buf[:i]).split(b";")[0], 16)
                del buf[:i + 2]
                if size == 0:
                    while True:  # trailers, up to the empty line
                        while b"\r\n" not in buf:
                            data = conn.recv(65536)
                            if not data:
                                return None
                            buf += data
                        i = buf.index(b"\r\n")
                        del buf[:i + 2]
                        if i == 0:
                            return bytes(body)
                body += read_exact(conn, buf, size)
                read_exact(conn, buf, 2)
        return read_exact(conn, buf, int(headers.get("content-length") or 0))

    def _serve(self, conn, raw):
        buf = bytearray()
        while True:
            head = read_request_head(conn, buf)
            if head is None:
                return
            t_arrive = time.monotonic()
            method, target, headers = head
            try:
                body = self._read_body(conn, buf, headers)
            except ConnectionError:
                return
            if body is None:
                return
            path, _, query = target.partition("?")
            q = dict(parse_qsl(query))
            if path == "/ready":
                status = 200 if self.ready else 503
                with self.lock:
                    self.checks.append((t_arrive, status, headers))
                payload = b'{"ready": %s}' % (b"true" if status == 200 else b"false")
            else:
                rec = Arrival(method, target, headers, body, t_arrive)
                with self.lock:
                    self.arrivals.append(rec)
                    n = self.per_path[path] = self.per_path.get(path, 0) + 1
                status = int(q.get("status", self.status))
                if n <= int(q.get("fail", 0)):
                    status = int(q.get("fail_status", 503))
                delay = int(q["delay_ms"]) / 1000 if "delay_ms" in q else self.delay
                if delay:
                    raw.stop_event.wait(delay)
                rec.status = status
                payload = json.dumps({"upstream": self.name, "path": path, "try": n, "method": method,
                                      "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}).encode()
                rec.t_answer = time.monotonic()  # taken before the write: measured waits can only be longer
            close = headers.get("connection", "").lower() == "close"
            conn.sendall(b"HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
                         % (status, len(payload), b"Connection: close\r\n" if close else b"") + payload)
            if close:
                return


# ---------------------------------------------------------------------------------------------------------
# helpers


def retries(max_retries=3, base_ms=100, cap_ms=None, **extra):
    """A retries section; the retry budget is made generous unless given (budgets are tested on their own)."""
    spec = {"max": max_retries, "base_ms": base_ms, "cap_ms": cap_ms if cap_ms is not None else base_ms * 8,
            "budget_min_per_second": 100}
    spec.update(extra)
    return spec


def errors_series(upstream, kind):
    return f'obsgw_upstream_errors_total{{upstream="{upstream}",kind="{kind}"}}'


def retries_series(upstream):
    return f'obsgw_upstream_retries_total{{upstream="{upstream}"}}'


def waits_ms(arrivals):
    """The pause between each answer and the next try's arrival, in ms."""
    return [(b.t_arrive - a.t_answer) * 1000 for a, b in zip(arrivals, arrivals[1:])]


class ResilienceCase(unittest.TestCase):
    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/json", r)
        body = r.json()
        self.assertEqual(body["error"], code, body)
        self.assertEqual(body["request_id"], r.header("X-Request-Id"))
        return body

    def assert_relayed(self, r, status, upstream_name):
        """A response that the upstream made (not a gateway error)."""
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertNotIn("error", body, body)
        self.assertEqual(body["upstream"], upstream_name, body)
        return body

    def upstream(self, name, **kw):
        up = ScriptedUpstream(name, **kw)
        self.addCleanup(up.stop)
        return up

    def gateway(self, upstreams, routes, **kw):
        gw = Gateway.start(make_config(upstreams, routes, **kw))
        self.addCleanup(gw.stop)
        return gw

    @staticmethod
    def access_for(gw, path, timeout=5.0):
        return gw.wait_access(lambda l: l.get("path") == path, timeout)


# ---------------------------------------------------------------------------------------------------------
# retries


class RetryTest(ResilienceCase):
    """Retries on one gateway; every test uses its own paths, so counts per path belong to one test."""

    @classmethod
    def setUpClass(cls):
        cls.up = ScriptedUpstream("main")
        cls.addClassCleanup(cls.up.stop)
        cls.slow = ScriptedUpstream("slow", delay=1.5)
        cls.addClassCleanup(cls.slow.stop)
        cls.dead_ports = [free_port(), free_port()]
        dead_url = f"http://127.0.0.1:{cls.dead_ports[0]}"
        upstreams = {
            "flaky": upstream_entry(cls.up.url, retries=retries(3, base_ms=200, cap_ms=800, jitter=0.2)),
            "capped": upstream_entry(cls.up.url, retries=retries(3, base_ms=100, cap_ms=150, jitter=0)),
            "dead": upstream_entry(dead_url, endpoints=[f"127.0.0.1:{p}" for p in cls.dead_ports],
                                   retries=retries(2, base_ms=20, cap_ms=40)),
            "plain": upstream_entry(cls.up.url),
            "plain_dead": upstream_entry(dead_url),
            "budget": upstream_entry(cls.up.url, retries={"max": 3, "base_ms": 1, "cap_ms": 1, "jitter": 0,
                                                          "budget_ratio": 0, "budget_min_per_second": 0}),
            "bounded": upstream_entry(cls.up.url, total_timeout_ms=1200,
                                      retries=retries(3, base_ms=50, cap_ms=50, jitter=0)),
            "pertry": upstream_entry(cls.up.url, endpoints=[cls.slow.address, cls.up.address],
                                     outlier={"consecutive_failures": 0},
                                     retries=retries(1, base_ms=10, per_try_timeout_ms=300)),
        }
        routes = [
            route("flaky", "flaky", path_prefix="/flaky"),
            route("flaky_unsafe", "flaky", path_prefix="/unsafe",
                  retry={"unsafe_methods": True, "max_body_bytes": 1000}),
            route("capped", "capped", path_prefix="/capped"),
            route("dead", "dead", path_prefix="/dead"),
            route("plain", "plain", path_prefix="/plain"),
            route("plain_dead", "plain_dead", path_prefix="/plain-dead"),
            route("budget", "budget", path_prefix="/budget"),
            route("pertry", "pertry", path_prefix="/pertry"),
            route("bounded", "bounded", path_prefix="/bounded"),
        ]
        cls.gw = Gateway.start(make_config(upstreams, routes))
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def test_flaky_get_succeeds_on_the_third_try_after_exponential_backoff(self):
        """503, 503, then 200: the client gets the 200; the upstream saw 3 tries; the waits were base·2^k shortened
        by at most the jitter fraction (base 200 ms, jitter 0.2: [160, 200] ms, then [320, 400] ms); the access log
        says tries 3 and the retries counter went up by 2."""
        before = metric_value(self.gw.metrics(), retries_series("flaky"))
        path = unique("/flaky/get")
        start = time.monotonic()
        r = request(self.port, "GET", path + "?fail=2")
        elapsed = time.monotonic() - start
        body = self.assert_relayed(r, 200, "main")
        self.assertEqual(body["try"], 3)
        tries = self.up.for_path(path)
        self.assertEqual(len(tries), 3, tries)
        self.assertEqual([a.status for a in tries], [503, 503, 200])
        w1, w2 = waits_ms(tries)
        print(f"\n    measured backoff waits (base 200, cap 800, jitter 0.2): {w1:.1f} ms, {w2:.1f} ms", end=" ")
        self.assertGreaterEqual(w1, 159, f"first wait {w1:.1f} ms")
        self.assertLessEqual(w1, 200 + SLACK_MS, f"first wait {w1:.1f} ms")
        self.assertGreaterEqual(w2, 319, f"second wait {w2:.1f} ms")
        self.assertLessEqual(w2, 400 + SLACK_MS, f"second wait {w2:.1f} ms")
        self.assertLess(elapsed, 0.6 + 2 * SLACK_MS / 1000 + 0.3)
        self.assertEqual(self.access_for(self.gw, path).get("tries"), 3)
        self.assertEqual(metric_value(self.gw.metrics(), retries_series("flaky")), before + 2)

    def test_always_503_stops_after_max_retries_with_capped_waits(self):
        """An upstream that always answers 503, max 3 retries: exactly 4 tries, waits 100, 150, 150 ms (base 100
        doubled, capped at 150, no jitter), then the gateway's 503 upstream_unavailable naming the 4 tries."""
        m0 = self.gw.metrics()
        path = unique("/capped/always")
        r = request(self.port, "GET", path + "?status=503")
        body = self.assert_error(r, 503, "upstream_unavailable")
        self.assertIn("4 tries", body["message"])
        self.assertEqual(body["message"].count("status 503"), 4, body["message"])
        tries = self.up.for_path(path)
        self.assertEqual(len(tries), 4, tries)
        waits = waits_ms(tries)
        print(f"\n    measured backoff waits (base 100, cap 150, jitter 0): "
              + ", ".join(f"{w:.1f}" for w in waits) + " ms", end=" ")
        for got, want in zip(waits, (100, 150, 150)):
            self.assertGreaterEqual(got, want - 1, waits)
            self.assertLessEqual(got, want + SLACK_MS, waits)
        line = self.access_for(self.gw, path)
        self.assertEqual((line["status"], line.get("tries"), line.get("error")), (503, 4, "upstream_unavailable"))
        m1 = self.gw.metrics()
        self.assertEqual(metric_value(m1, retries_series("capped")) - metric_value(m0, retries_series("capped")), 3)
        self.assertEqual(metric_value(m1, errors_series("capped", "status_503"))
                         - metric_value(m0, errors_series("capped", "status_503")), 4)

    def test_status_not_in_on_status_is_relayed_at_once(self):
        """A 500 (not in on_status 502/503/504) is the upstream's answer: relayed as is after one try."""
        path = unique("/flaky/500")
        r = request(self.port, "GET", path + "?status=500")
        self.assertEqual(self.assert_relayed(r, 500, "main")["try"], 1)
        self.assertEqual(len(self.up.for_path(path)), 1)
        self.assertNotIn("tries", self.access_for(self.gw, path))

    def test_connect_refused_on_every_endpoint_gives_503_after_every_try(self):
        """Both endpoints refuse connections: a connection failure is retried (nothing was sent), max 2 retries,
        then 503 upstream_unavailable naming 3 tries; the backoff waits passed (>= 16 + 32 ms with jitter 0.2)."""
        m0 = self.gw.metrics()
        start = time.monotonic()
        r = request(self.port, "GET", unique("/dead/get"))
        elapsed = time.monotonic() - start
        body = self.assert_error(r, 503, "upstream_unavailable")
        self.assertIn("3 tries", body["message"])
        self.assertEqual(body["message"].count("upstream_unreachable"), 3, body["message"])
        self.assertNotIn(str(self.dead_ports[0]), body["message"])
        self.assertGreaterEqual(elapsed, 0.048)
        m1 = self.gw.metrics()
        self.assertEqual(metric_value(m1, retries_series("dead")) - metric_value(m0, retries_series("dead")), 2)
        self.assertEqual(metric_value(m1, errors_series("dead", "upstream_unreachable"))
                         - metric_value(m0, errors_series("dead", "upstream_unreachable")), 3)

    def test_connect_refused_is_retried_for_a_post_too(self):
        """A POST (not idempotent, route without unsafe_methods) is still retried when the connection is refused:
        nothing of it was sent."""
        r = request(self.port, "POST", unique("/dead/post"), body=b"payload")
        body = self.assert_error(r, 503, "upstream_unavailable")
        self.assertIn("3 tries", body["message"])

    def test_without_retries_the_old_behaviour_stays(self):
        """No "retries": one try; the upstream's 503 is relayed as is, a refused connection is 502
        upstream_unreachable."""
        path = unique("/plain/x")
        r = request(self.port, "GET", path + "?fail=2")
        self.assertEqual(self.assert_relayed(r, 503, "main")["try"], 1)
        self.assertEqual(len(self.up.for_path(path)), 1)
        self.assertNotIn("tries", self.access_for(self.gw, path))
        r = request(self.port, "GET", "/plain-dead/x")
        self.assert_error(r, 502, "upstream_unreachable")

    def test_post_is_not_retried_by_default(self):
        """A POST answered 503 on a route without retry.unsafe_methods: one try, the upstream's 503 relayed."""
        path = unique("/flaky/post")
        r = request(self.port, "POST", path + "?fail=2", body=b'{"stream": "a"}')
        self.assertEqual(self.assert_relayed(r, 503, "main")["try"], 1)
        self.assertEqual(len(self.up.for_path(path)), 1)

    def test_post_with_unsafe_methods_is_retried_with_the_identical_body(self):
        """retry.unsafe_methods: a POST with a Content-Length body is held whole and sent again; the upstream
        receives the same bytes on each of the 3 tries."""
        path = unique("/unsafe/push")
        payload = bytes(range(256)) * 3  # 768 bytes, under max_body_bytes 1000
        r = request(self.port, "POST", path + "?fail=2", [("Content-Type", "application/octet-stream")], payload)
        body = self.assert_relayed(r, 200, "main")
        self.assertEqual((body["try"], body["body_sha256"]), (3, hashlib.sha256(payload).hexdigest()))
        tries = self.up.for_path(path)
        self.assertEqual(len(tries), 3, tries)
        for a in tries:
            self.assertEqual(a.method, "POST")
            self.assertEqual(a.body, payload)
            self.assertEqual(a.headers.get("content-length"), str(len(payload)))

    def test_chunked_post_is_not_retried(self):
        """A chunked POST streams (its body is not held), so it is tried once even with unsafe_methods."""
        path = unique("/unsafe/chunked")
        with HttpConnection(self.port) as c:
            c.request("POST", path + "?fail=2", [("Transfer-Encoding", "chunked")],
                      chunk_encode([b"first piece ", b"second piece"]))
            r = c.read_response("POST")
        self.assertEqual(self.assert_relayed(r, 503, "main")["try"], 1)
        tries = self.up.for_path(path)
        self.assertEqual(len(tries), 1, tries)
        self.assertEqual(tries[0].body, b"first piece second piece")

    def test_post_over_max_body_bytes_is_not_retried(self):
        """A POST whose Content-Length exceeds retry.max_body_bytes (1000) streams and is tried once."""
        path = unique("/unsafe/big")
        payload = b"x" * 2000
        r = request(self.port, "POST", path + "?fail=1", body=payload)
        self.assertEqual(self.assert_relayed(r, 503, "main")["try"], 1)
        tries = self.up.for_path(path)
        self.assertEqual(len(tries), 1, tries)
        self.assertEqual(tries[0].body, payload)

    def test_retry_budget_limits_retries(self):
        """budget_ratio 0 and budget_min_per_second 0: an io thread starts with 10 retry tokens and gets no more.
        On one client connection (one io thread) with an always-503 upstream, max 3: 4 + 4 + 4 tries, then 2
        (the 10th token), then 1; retry_budget_exhausted is counted twice."""
        m0 = self.gw.metrics()
        paths = []
        with HttpConnection(self.port) as c:
            for i in range(5):
                paths.append(unique("/budget/x"))
                c.request("GET", paths[-1] + "?status=503")
                r = c.read_response()
                body = self.assert_error(r, 503, "upstream_unavailable")
        self.assertEqual([len(self.up.for_path(p)) for p in paths], [4, 4, 4, 2, 1])
        self.assertIn("1 try", body["message"])
        m1 = self.gw.metrics()
        self.assertEqual(metric_value(m1, errors_series("budget", "retry_budget_exhausted"))
                         - metric_value(m0, errors_series("budget", "retry_budget_exhausted")), 2)
        self.assertEqual(metric_value(m1, retries_series("budget")) - metric_value(m0, retries_series("budget")), 10)

    def test_total_timeout_bounds_every_try_together(self):
        """total_timeout_ms 1200, no per-try timeout, 3 retries: an upstream that answers 503 after 800 ms gets a
        second try at ~850 ms, which must end at the overall deadline (~1200 ms, 504 upstream_timeout), not wait
        for its own answer at ~1650 ms; no third try starts."""
        path = unique("/bounded/slow")
        start = time.monotonic()
        r = request(self.port, "GET", path + "?status=503&delay_ms=800", timeout=10)
        elapsed = time.monotonic() - start
        body = self.assert_error(r, 503, "upstream_unavailable")
        self.assertIn("2 tries", body["message"])
        self.assertIn("status 503, upstream_timeout", body["message"])
        self.assertEqual(len(self.up.for_path(path)), 2)
        self.assertGreaterEqual(elapsed, 1.15, body)
        self.assertLess(elapsed, 1.2 + SLACK_MS / 1000 + 0.15, body)

    def test_per_try_timeout_moves_on_to_the_other_endpoint(self):
        """per_try_timeout_ms 300 with endpoints [slow (answers after 1.5 s), fast]: a try on the slow endpoint is
        abandoned after 300 ms and the request is answered by the fast one, well before the slow one would
        answer. (Round robin on one connection: one of two requests starts on the slow endpoint.)"""
        paths = [unique("/pertry/a"), unique("/pertry/b")]
        results = []
        with HttpConnection(self.port, timeout=10) as c:
            for p in paths:
                start = time.monotonic()
                c.request("GET", p)
                r = c.read_response()
                results.append((p, r.status, r.json().get("upstream"), round(time.monotonic() - start, 3)))
        self.assertGreaterEqual(sum(len(self.slow.for_path(p)) for p in paths), 1, results)
        for p, status, served_by, elapsed in results:
            self.assertEqual((status, served_by), (200, "main"), results)
            self.assertLess(elapsed, 1.0, results)


# ---------------------------------------------------------------------------------------------------------
# several endpoints: round robin, dead endpoint, passive ejection


class EndpointTest(ResilienceCase):
    """Several endpoints per upstream; each test has its own gateway and upstreams."""

    def served_by(self, r):
        self.assertEqual(r.status, 200, r)
        return r.json()["upstream"]

    def test_round_robin_alternates(self):
        """Two endpoints, round robin: requests on one connection (one io thread) alternate strictly; over fresh
        connections (two io threads, each with its own position) the counts differ by at most 2."""
        a, b = self.upstream("a"), self.upstream("b")
        gw = self.gateway({"rr": upstream_entry(a.url, endpoints=[a.address, b.address], balance="round_robin")},
                          [route("rr", "rr", path_prefix="/")])
        order = []
        with HttpConnection(gw.port) as c:
            for i in range(10):
                c.request("GET", f"/rr/keep/{i}")
                order.append(self.served_by(c.read_response()))
        self.assertEqual((order.count("a"), order.count("b")), (5, 5), order)
        for x, y in zip(order, order[1:]):
            self.assertNotEqual(x, y, order)
        fresh = [self.served_by(request(gw.port, "GET", f"/rr/fresh/{i}")) for i in range(20)]
        self.assertLessEqual(abs(fresh.count("a") - fresh.count("b")), 2, fresh)
        self.assertEqual((a.count("/rr/"), b.count("/rr/")), (order.count("a") + fresh.count("a"),
                                                               order.count("b") + fresh.count("b")))

    def half_dead(self):
        """An upstream with endpoints [dead port, live], retries max 2, ejection off."""
        live = self.upstream("live")
        dead = f"127.0.0.1:{free_port()}"
        gw = self.gateway({"half": upstream_entry(live.url, endpoints=[dead, live.address],
                                                  outlier={"consecutive_failures": 0},
                                                  retries=retries(2, base_ms=20))},
                          [route("half", "half", path_prefix="/")])
        return gw, live

    def test_dead_endpoint_with_retries_every_request_succeeds(self):
        """Endpoints [dead, live] with retries: every GET succeeds, and so does every POST on a route without
        unsafe_methods (a refused connection sent nothing, so any method may be tried again; the streamed body is
        read only once a connection stands); each request reaches the live endpoint exactly once, bodies intact."""
        gw, live = self.half_dead()
        m0 = gw.metrics()
        with HttpConnection(gw.port) as c:
            for i in range(10):
                c.request("GET", f"/half/get/{i}")
                self.assertEqual(self.served_by(c.read_response()), "live")
            for i in range(6):
                payload = f"push number {i} ".encode() * 50
                c.request("POST", f"/half/post/{i}", body=payload)
                r = c.read_response("POST")
                self.assertEqual(self.served_by(r), "live")
                self.assertEqual(r.json()["body_sha256"], hashlib.sha256(payload).hexdigest())
        for i in range(10):
            self.assertEqual(len(live.for_path(f"/half/get/{i}")), 1)
        for i in range(6):
            got = live.for_path(f"/half/post/{i}")
            self.assertEqual([a.body for a in got], [f"push number {i} ".encode() * 50])
        m1 = gw.metrics()
        # Round robin on one io thread: at least every other request starts on the dead endpoint.
        self.assertGreaterEqual(metric_value(m1, retries_series("half")) - metric_value(m0, retries_series("half")), 8)

    def test_access_log_tries_counts_refused_connections(self):
        """A request that was refused by the dead endpoint and then answered by the live one was tried twice (the
        503 message of an all-dead upstream counts refused connections as tries): its access log line should say
        "tries": 2, one such line per retry counted in /metrics."""
        gw, live = self.half_dead()
        m0 = gw.metrics()
        paths = [f"/half/tries/{i}" for i in range(4)]
        with HttpConnection(gw.port) as c:
            for p in paths:
                c.request("GET", p)
                self.assertEqual(self.served_by(c.read_response()), "live")
        retried = metric_value(gw.metrics(), retries_series("half")) - metric_value(m0, retries_series("half"))
        self.assertGreaterEqual(retried, 2)
        lines = [self.access_for(gw, p) for p in paths]
        self.assertEqual(sum(1 for l in lines if l.get("tries") == 2), retried,
                         [(l["path"], l.get("tries")) for l in lines])

    def test_passive_ejection_and_return(self):
        """Endpoints [good, bad (always 503)], outlier 2 failures / 1500 ms, retries: every request succeeds; the
        bad endpoint is ejected after its 2nd consecutive failure and gets no connection at all while ejected;
        after ejection_ms it is tried again."""
        eject_s = 1.5
        good, bad = self.upstream("good"), self.upstream("bad", status=503)
        gw = self.gateway({"ej": upstream_entry(good.url, endpoints=[good.address, bad.address],
                                                outlier={"consecutive_failures": 2, "ejection_ms": int(eject_s * 1000)},
                                                retries=retries(2, base_ms=10))},
                          [route("ej", "ej", path_prefix="/")])
        series = errors_series("ej", "ejected")
        with HttpConnection(gw.port) as c:
            def get(name):
                c.request("GET", f"/ej/{name}")
                self.assertEqual(self.served_by(c.read_response()), "good")

            for i in range(8):
                t_before = time.monotonic()
                get(f"warm{i}")
                if metric_value(gw.metrics(), series) >= 1:
                    break
            else:
                self.fail(f"not ejected after 8 requests; bad endpoint saw {bad.count()} requests")
            t_ejected = time.monotonic()
            self.assertEqual(bad.count(), 2)
            self.assertEqual(bad.raw.connections_total, 2)
            line = gw.wait_for_log(lambda l: l.get("msg") == "upstream endpoint ejected after consecutive failures")
            self.assertEqual((line.get("upstream"), line.get("endpoint")), ("ej", bad.address), line)

            for i in range(10):
                get(f"ejected{i}")
            self.assertLess(time.monotonic() - t_before, eject_s - 0.3, "the requests took too long to fall "
                                                                         "inside the ejection window")
            self.assertEqual(bad.raw.connections_total, 2, "an ejected endpoint was connected to")
            self.assertEqual(good.count("/ej/ejected"), 10)

            time.sleep(max(0.0, t_ejected + eject_s + 0.1 - time.monotonic()))
            for i in range(4):
                get(f"back{i}")
            self.assertGreaterEqual(bad.raw.connections_total, 3, "the endpoint was not tried after ejection_ms")
            self.assertGreaterEqual(len([a for a in bad.arrivals if a.path.startswith("/ej/back")]), 1)


class HealthCheckTest(ResilienceCase):
    def test_failing_health_checks_take_an_endpoint_out_and_passing_ones_bring_it_back(self):
        """Active checks (GET /ready every 100 ms, thresholds 2/2): while B answers /ready with 503 it is taken
        out after 2 failed checks and gets no traffic; once /ready answers 200 again it is taken back after 2
        passing checks and gets its share again."""
        a, b = self.upstream("a"), self.upstream("b")
        gw = self.gateway({"hc": upstream_entry(a.url, endpoints=[a.address, b.address],
                                                outlier={"consecutive_failures": 0},
                                                health_check={"path": "/ready", "interval_ms": 100, "timeout_ms": 500,
                                                              "healthy_threshold": 2, "unhealthy_threshold": 2})},
                          [route("hc", "hc", path_prefix="/")])
        wait_until(lambda: len(a.checks_since(0)) >= 2 and len(b.checks_since(0)) >= 2, timeout=5,
                   message="health checks on both endpoints")

        def spread(tag, n=10):
            """n requests on one connection: {upstream name: count}."""
            got = {"a": 0, "b": 0}
            with HttpConnection(gw.port) as c:
                for i in range(n):
                    c.request("GET", f"/hc/{tag}/{i}")
                    r = c.read_response()
                    self.assertEqual(r.status, 200, r)
                    got[r.json()["upstream"]] += 1
            return got

        self.assertEqual(spread("before"), {"a": 5, "b": 5})

        start = gw.log_count()
        t_down = time.monotonic()
        b.ready = False
        line = gw.wait_for_log(lambda l: l.get("msg") == "upstream endpoint failed its health checks"
                               and l.get("endpoint") == b.address, timeout=5, start=start)
        self.assertEqual(line.get("reason"), "status 503", line)
        self.assertGreaterEqual(len(b.checks_since(t_down, 503)), 2)
        self.assertEqual(spread("down"), {"a": 10, "b": 0})

        start = gw.log_count()
        t_up = time.monotonic()
        b.ready = True
        gw.wait_for_log(lambda l: l.get("msg") == "upstream endpoint healthy again" and l.get("endpoint") == b.address,
                        timeout=5, start=start)
        self.assertGreaterEqual(len(b.checks_since(t_up, 200)), 2)
        self.assertEqual(spread("up"), {"a": 5, "b": 5})
        # The checks carry the upstream's Host (its url's authority) and say who they are.
        check_headers = b.checks_since(t_up)[-1][2]
        self.assertEqual(check_headers.get("host"), a.address)
        self.assertEqual(check_headers.get("user-agent"), "obsgw-health-check")


class LoadTest(ResilienceCase):
    def test_circuit_breaker_refuses_beyond_max_pending_at_once(self):
        """max_pending 2 with a slow upstream (1 s): two requests in flight, the third gets 503 upstream_overloaded
        at once (it never reaches the upstream); the first two succeed and the slots are given back."""
        up = self.upstream("cb")
        gw = self.gateway({"cb": upstream_entry(up.url, max_pending=2)}, [route("cb", "cb", path_prefix="/")])
        results = {}

        def slow(i):
            results[i] = request(gw.port, "GET", f"/cb/slow{i}?delay_ms=1000", timeout=10)

        threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(2)]
        for t in threads:
            t.start()
        wait_until(lambda: up.count("/cb/slow") >= 2, timeout=5, message="two slow requests at the upstream")
        start = time.monotonic()
        r = request(gw.port, "GET", "/cb/third")
        elapsed = time.monotonic() - start
        self.assertTrue(all(t.is_alive() for t in threads), "the slow requests were no longer pending")
        self.assert_error(r, 503, "upstream_overloaded")
        self.assertLess(elapsed, 0.5)  # not queued behind the slow ones (they take 1 s)
        self.assertEqual(up.count("/cb/third"), 0)
        for t in threads:
            t.join(10)
        self.assertEqual(sorted(results), [0, 1])
        for i in range(2):
            self.assert_relayed(results[i], 200, "cb")
        self.assert_relayed(request(gw.port, "GET", "/cb/after"), 200, "cb")
        self.assertEqual(metric_value(gw.metrics(), errors_series("cb", "overloaded")), 1)
        line = self.access_for(gw, "/cb/third")
        self.assertEqual((line["status"], line.get("error")), (503, "upstream_overloaded"))

    def test_burst_of_pushes_loses_none_when_an_endpoint_dies(self):
        """200 POSTs with distinct bodies from 8 clients (route retry.unsafe_methods, retries max 3 base 50 ms with
        the default retry budget, 2 endpoints); endpoint B is killed (listener and connections closed) after 60
        answers. Every push is answered 2xx and every body arrived whole at an upstream at least once."""
        n, workers = 200, 8
        # Each answer takes 20 ms, so the burst lasts about 0.5 s and the kill lands in its middle.
        a, b = self.upstream("a", delay=0.02), self.upstream("b", delay=0.02)
        gw = self.gateway({"push": upstream_entry(a.url, endpoints=[a.address, b.address],
                                                  outlier={"consecutive_failures": 3, "ejection_ms": 30000},
                                                  retries={"max": 3, "base_ms": 50, "cap_ms": 400})},
                          [route("push", "push", path_prefix="/push", retry={"unsafe_methods": True})])
        def loki_push(i):
            line = f"line {i} " + "x" * (i % 97)
            return json.dumps({"streams": [{"stream": {"job": "burst", "n": str(i)},
                                            "values": [[str(1700000000000000000 + i), line]]}]}).encode()

        bodies = {i: loki_push(i) for i in range(n)}
        todo = queue.Queue()
        for i in range(n):
            todo.put(i)
        results, lock = {}, threading.Lock()
        deadline = time.monotonic() + 40

        def worker():
            conn = None
            while time.monotonic() < deadline:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    break
                try:
                    if conn is None:
                        conn = HttpConnection(gw.port, timeout=15)
                    conn.request("POST", f"/push/{i}", [("Content-Type", "application/json")], bodies[i])
                    outcome = conn.read_response("POST").status
                except Exception as e:  # a lost push: reported, not retried by the client
                    outcome = repr(e)
                    conn.close()
                    conn = None
                with lock:
                    results[i] = outcome
            if conn:
                conn.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        wait_until(lambda: len(results) >= 60, timeout=20, message="60 answers before the kill")
        answered_at_kill = len(results)
        b_before_kill = b.count("/push/")
        b.stop()
        answered_after_kill = len(results)
        b_after_kill = b.count("/push/")
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self.assertEqual(len(results), n, f"{n - len(results)} pushes never answered")
        failed = {i: s for i, s in results.items() if not (isinstance(s, int) and 200 <= s < 300)}
        self.assertEqual(failed, {}, f"{len(failed)} pushes failed")
        received = [x.body for x in a.arrivals + b.arrivals]
        self.assertEqual(len(set(received) & set(bodies.values())), n)
        self.assertGreater(b_before_kill, 0, "B got nothing before it was killed")
        self.assertLess(answered_after_kill, n - 50, "the kill came too late to matter")
        self.assertEqual(b.count("/push/"), b_after_kill, "B got requests after it was killed")
        m = gw.metrics()
        self.assertGreaterEqual(metric_value(m, retries_series("push")), 1)
        self.assertGreaterEqual(metric_value(m, errors_series("push", "ejected")), 1)
        print(f"\n    burst: {answered_at_kill}-{answered_after_kill} answered during the kill; "
              f"A got {len(a.arrivals)}, B {len(b.arrivals)} ({b_before_kill} before the kill); "
              f"{len(received) - len(set(received))} bodies delivered twice; "
              f"retries {metric_value(m, retries_series('push')):.0f}", end=" ")

    def test_least_outstanding_prefers_the_fast_endpoint(self):
        """least_outstanding with a slow endpoint (250 ms) and a fast one, 4 concurrent clients: the fast endpoint
        gets at least 3 times as many requests (round robin would split them evenly)."""
        slow, fast = self.upstream("slow", delay=0.25), self.upstream("fast")
        gw = self.gateway({"lo": upstream_entry(slow.url, endpoints=[slow.address, fast.address],
                                                balance="least_outstanding", outlier={"consecutive_failures": 0})},
                          [route("lo", "lo", path_prefix="/")])
        counts, statuses, lock = {"slow": 0, "fast": 0}, [], threading.Lock()
        deadline = time.monotonic() + 2.5

        def worker(w):
            with HttpConnection(gw.port) as c:
                for i in range(80):
                    if time.monotonic() >= deadline:
                        break
                    c.request("GET", f"/lo/{w}/{i}")
                    r = c.read_response()
                    with lock:
                        statuses.append(r.status)
                        if r.status == 200:
                            counts[r.json()["upstream"]] += 1

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        self.assertEqual(set(statuses), {200})
        print(f"\n    least_outstanding: fast {counts['fast']}, slow {counts['slow']}", end=" ")
        self.assertGreaterEqual(counts["slow"], 1)
        self.assertGreaterEqual(counts["fast"], 3 * counts["slow"], counts)


# ---------------------------------------------------------------------------------------------------------
# configuration


class DnsTest(ResilienceCase):
    """An upstream named by a host name. gatewayd runs in a mount namespace of its own (unshare, as root) where
    /etc/hosts and /etc/resolv.conf are this test's files, so the name can be moved without touching the
    machine's resolver: a nameserver on 127.0.0.1:53, where nothing listens, makes every DNS query fail at once."""

    NAME = "upstream.obsgw.test"

    def write_hosts(self, line):
        with open(self.hosts, "w") as f:  # rewritten in place: the bind mount follows the file, not the name
            f.write(line + "\n" if line else "")

    def test_name_is_resolved_again_and_the_last_addresses_outlive_a_resolver_outage(self):
        """resolve_interval_ms 500, no pooling (a connection per request): served by a (127.0.0.1); the name
        moves to 127.0.0.2 → after the interval, served by b; the name disappears → still b (last addresses),
        without waiting; it comes back as 127.0.0.1 → a again."""
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
        if probe.returncode != 0:  # needs CAP_SYS_ADMIN (root); said, not hidden
            self.skipTest(f"no private mount namespace here: {probe.stderr.decode(errors='replace').strip()}")
        a = self.upstream("a")
        b = self.upstream("b", host="127.0.0.2", port=a.port)
        d = tempfile.mkdtemp(prefix="obsgw-dns-")
        self.addCleanup(shutil.rmtree, d, True)
        self.hosts = os.path.join(d, "hosts")
        resolv = os.path.join(d, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        self.write_hosts(f"127.0.0.1 {self.NAME}")
        wrapper = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$0" /etc/hosts && mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
                   self.hosts, resolv]
        up = upstream_entry(f"http://{self.NAME}:{a.port}", resolve_interval_ms=500, max_idle_connections=0)
        gw = Gateway.start(make_config({"named": up}, [route("named", "named", path_prefix="/")],
                                       server={"threads": 1}), wrapper=wrapper)
        self.addCleanup(gw.stop)

        def served_by():
            start = time.monotonic()
            r = request(gw.port, "GET", "/x")
            return r.json().get("upstream", r.json().get("error")), time.monotonic() - start

        self.assertEqual(served_by()[0], "a")
        self.write_hosts(f"127.0.0.2 {self.NAME}")
        self.assertEqual(served_by()[0], "a")  # resolved moments ago: the address stands
        time.sleep(0.6)
        self.assertEqual(served_by()[0], "b")
        self.write_hosts("")
        time.sleep(0.6)
        for _ in range(3):
            who, took = served_by()
            self.assertEqual(who, "b")
            self.assertLess(took, 0.5)
        self.write_hosts(f"127.0.0.1 {self.NAME}")
        wait_until(lambda: served_by()[0] == "a", timeout=3, interval=0.1, message="the name back at 127.0.0.1")


class ResilienceConfigTest(unittest.TestCase):
    """gatewayd --check names mistakes in the new keys by their path."""

    @staticmethod
    def config(route_extra=None, **upstream):
        return make_config({"u": upstream_entry("http://127.0.0.1:9", **upstream)},
                           [route("r", "u", path_prefix="/", **(route_extra or {}))])

    def assert_problem(self, cfg, *fragments):
        code, _, err, _ = run_check(cfg)
        self.assertEqual(code, 2, err)
        for f in fragments:
            self.assertIn(f, err)

    def test_valid_config_passes(self):
        cfg = self.config({"retry": {"unsafe_methods": True, "max_body_bytes": 4096}},
                          endpoints=["127.0.0.1:9", "localhost:10", "[::1]:11"], balance="least_outstanding",
                          health_check={"path": "/ready", "interval_ms": 1000, "timeout_ms": 200,
                                        "healthy_threshold": 1, "unhealthy_threshold": 2},
                          outlier={"consecutive_failures": 3, "ejection_ms": 5000},
                          retries={"max": 2, "base_ms": 50, "cap_ms": 500, "jitter": 0.5, "on_status": [502, 503],
                                   "per_try_timeout_ms": 1000, "budget_ratio": 0.1, "budget_min_per_second": 5},
                          max_pending=100)
        code, out, err, _ = run_check(cfg)
        self.assertEqual(code, 0, err)

    def test_bad_endpoint(self):
        self.assert_problem(self.config(endpoints=["127.0.0.1:9", "nohostport"]),
                            'upstreams.u.endpoints[1]: "nohostport" is not host:port')

    def test_bad_balance(self):
        self.assert_problem(self.config(balance="random"),
                            'upstreams.u.balance: "random" is not one of round_robin, least_outstanding')

    def test_cap_below_base(self):
        self.assert_problem(self.config(retries={"base_ms": 500, "cap_ms": 100}),
                            "upstreams.u.retries.cap_ms: must not be below base_ms")

    def test_health_check_without_path(self):
        self.assert_problem(self.config(health_check={"interval_ms": 100}), "upstreams.u.health_check.path: required")

    def test_bad_retry_values(self):
        self.assert_problem(self.config(retries={"jitter": 1.5, "on_status": [404]}),
                            "upstreams.u.retries.jitter", "upstreams.u.retries.on_status[0]: expected a 5xx")
        self.assert_problem(self.config({"retry": {"unsafe_methods": "yes"}}), "routes[0].retry.unsafe_methods")

    def test_resolve_interval_has_a_floor(self):
        self.assert_problem(self.config(resolve_interval_ms=10), "upstreams.u.resolve_interval_ms: at least 100")


if __name__ == "__main__":
    unittest.main()
