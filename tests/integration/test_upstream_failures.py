"""Upstream failures: each becomes the right 502/504 JSON error (without internal addresses unless
expose_errors), a failure after the head was relayed is never disguised as a complete response, and stale pooled
connections are retried only when that is safe."""

import json
import socket
import time
import unittest

from harness import (Gateway, HttpConnection, IncompleteResponse, free_port, make_config, metric_value, request,
                     route, upstream_entry)
from upstream import EchoUpstream, RawUpstream, read_request_head

READ_TIMEOUT_MS = 400


def respond(conn, body):
    """A complete keep-alive 200 response."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) +
                 body)


# --- raw upstream behaviours -------------------------------------------------------------------------------

def close_without_response(conn, up):
    if read_request_head(conn, bytearray()):
        up.record("request")


def send_garbage(conn, up):
    if read_request_head(conn, bytearray()):
        up.record("request")
        conn.sendall(b"THIS IS NOT HTTP\r\nat all\r\n\r\n")
        up.stop_event.wait(0.5)


def truncate_body(conn, up):
    if read_request_head(conn, bytearray()):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500)


def truncate_chunked(conn, up):
    if read_request_head(conn, bytearray()):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")


def stall_mid_body(conn, up):
    if read_request_head(conn, bytearray()):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 500)
        up.stop_event.wait(5)


def misbehave_once(first_answer):
    """A handler that answers the very first request with first_answer(conn) and every later one honestly."""
    def handler(conn, up):
        buf = bytearray()
        while True:
            head = read_request_head(conn, buf)
            if head is None:
                return
            with up.lock:
                first = not up.received
                up.received.append(head[1])
            if first:
                first_answer(conn)
            else:
                respond(conn, b"real")
    return handler


def second_response_right_behind(conn):
    """An unrequested second response sent right behind the answer."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected")


def late_body_after_204(conn):
    """A 204, then a moment later bytes nobody asked for (a body after a bodiless answer, as a buggy upstream
    might send)."""
    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    time.sleep(0.05)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected")


def interim_then_final(conn, up):
    if read_request_head(conn, bytearray()):
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                     b"HTTP/1.1 100 Continue\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal")


def close_when_idle(conn, up):
    """Keep-alive responses, but an idle connection is closed after 100 ms (like a short server keep-alive)."""
    buf = bytearray()
    conn.settimeout(0.1)
    while True:
        try:
            head = read_request_head(conn, buf)
        except socket.timeout:
            return
        if head is None:
            return
        up.record((head[0], head[1]))
        respond(conn, json.dumps({"served": head[1]}).encode())


def drop_second_request(conn, up):
    """Answers the first request on a connection with keep-alive; reads the second one and closes without
    answering (the race where a server times out a pooled connection just as a request arrives)."""
    buf = bytearray()
    for n in range(2):
        head = read_request_head(conn, buf)
        if head is None:
            return
        up.record((head[0], head[1], n))
        if n == 0:
            respond(conn, json.dumps({"served": head[1]}).encode())


class UpstreamFailureTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.echo = EchoUpstream()
        cls.addClassCleanup(cls.echo.stop)
        cls.raw = {}
        for name, fn in [("closer", close_without_response), ("garbage", send_garbage),
                         ("truncate", truncate_body), ("truncchunk", truncate_chunked), ("stall", stall_mid_body),
                         ("idleclose", close_when_idle), ("race", drop_second_request),
                         ("racepost", drop_second_request), ("desync", misbehave_once(second_response_right_behind)),
                         ("late204", misbehave_once(late_body_after_204)), ("interim", interim_then_final)]:
            cls.raw[name] = RawUpstream(fn)
            cls.addClassCleanup(cls.raw[name].stop)
        cls.down_port = free_port()
        upstreams = {"down": upstream_entry(f"http://127.0.0.1:{cls.down_port}"),
                     "exposed": upstream_entry(f"http://127.0.0.1:{cls.down_port}", expose_errors=True),
                     "slow": upstream_entry(cls.echo.url, read_timeout_ms=READ_TIMEOUT_MS)}
        routes = [route("down", "down", path_prefix="/down"), route("exposed", "exposed", path_prefix="/exposed"),
                  route("slow", "slow", path_prefix="/slow")]
        for name, up in cls.raw.items():
            upstreams[name] = upstream_entry(up.url, read_timeout_ms=READ_TIMEOUT_MS)
            routes.append(route(name, name, path_prefix="/" + name))
        cls.gw = Gateway.start(make_config(upstreams, routes))
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        body = r.json()
        self.assertEqual(body["error"], code)
        self.assertEqual(body["request_id"], r.header("X-Request-Id"))
        return body

    def test_upstream_down_is_502_without_address(self):
        """An upstream that refuses connections gives 502 upstream_unreachable; the message names no address."""
        series = 'obsgw_upstream_errors_total{upstream="down",kind="upstream_unreachable"}'
        before = metric_value(self.gw.metrics(), series)
        r = request(self.port, "GET", "/down/x")
        body = self.assert_error(r, 502, "upstream_unreachable")
        self.assertNotIn("127.0.0.1", r.body.decode())
        self.assertNotIn(str(self.down_port), r.body.decode())
        self.assertTrue(body["message"])
        self.assertEqual(metric_value(self.gw.metrics(), series), before + 1)

    def test_expose_errors_names_the_upstream(self):
        """With expose_errors the 502 message names the upstream and its address."""
        r = request(self.port, "GET", "/exposed/x")
        body = self.assert_error(r, 502, "upstream_unreachable")
        self.assertIn(f"127.0.0.1:{self.down_port}", body["message"])
        self.assertIn("exposed", body["message"])

    def test_slow_upstream_is_504(self):
        """An upstream that does not answer within read_timeout_ms gives 504 upstream_timeout, promptly."""
        start = time.monotonic()
        r = request(self.port, "GET", "/slow/x?delay_ms=4000")
        elapsed = time.monotonic() - start
        self.assert_error(r, 504, "upstream_timeout")
        self.assertGreaterEqual(elapsed, READ_TIMEOUT_MS / 1000 * 0.8)
        self.assertLess(elapsed, READ_TIMEOUT_MS / 1000 + 1.5)

    def test_upstream_closes_without_response_is_502(self):
        """An upstream that reads the request and closes gives 502 upstream_reset."""
        r = request(self.port, "GET", "/closer/x")
        self.assert_error(r, 502, "upstream_reset")
        self.assertGreaterEqual(len(self.raw["closer"].received), 1)

    def test_upstream_garbage_is_502(self):
        """An upstream that answers with something that is not HTTP gives 502 bad_upstream_response."""
        r = request(self.port, "GET", "/garbage/x")
        self.assert_error(r, 502, "bad_upstream_response")

    def test_truncated_body_is_not_completed(self):
        """An upstream closing before its Content-Length is reached: the client's response is cut off too
        (the connection closes before the body is complete), never padded or passed off as complete."""
        for path in ("/truncate/x", "/truncchunk/x"):
            with self.subTest(path=path):
                with HttpConnection(self.port, timeout=5) as c:
                    c.request("GET", path)
                    with self.assertRaises(IncompleteResponse):
                        c.read_response()

    def test_upstream_stalling_mid_body_is_cut_after_read_timeout(self):
        """An upstream that stops sending mid-body is given up after read_timeout_ms; the client connection
        closes with the body incomplete."""
        with HttpConnection(self.port, timeout=5) as c:
            c.request("GET", "/stall/x")
            start = time.monotonic()
            with self.assertRaises(IncompleteResponse):
                c.read_response()
            elapsed = time.monotonic() - start
        self.assertLess(elapsed, READ_TIMEOUT_MS / 1000 + 1.5)

    def test_upstream_error_status_is_relayed(self):
        """An upstream's own 503 (with its body) is relayed as is, not replaced by a gateway error."""
        r = request(self.port, "GET", "/slow/x?status=503")
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["path"], "/slow/x")

    def test_unrequested_bytes_from_upstream_are_never_relayed(self):
        """Bytes an upstream sends after a complete response (a second, unrequested response) are discarded with
        that connection: the next request gets its own answer, not the injected one."""
        with HttpConnection(self.port) as c:
            c.request("GET", "/desync/1")
            self.assertEqual(c.read_response().body, b"first")
            c.request("GET", "/desync/2")
            r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"real"))
        self.assertEqual(self.raw["desync"].connections_total, 2)

    def test_late_bytes_after_bodiless_answer_never_reach_the_next_request(self):
        """Bytes that arrive on a pooled connection after a 204 (while it sits idle, moments later) spoil it: the
        next request, sent at once, gets its own answer on a fresh connection, never the stray bytes."""
        with HttpConnection(self.port) as c:
            c.request("POST", "/late204/1", body=b"x")
            self.assertEqual(c.read_response("POST").status, 204)
            time.sleep(0.15)  # the stray bytes arrive while the connection is pooled (well within 250 ms)
            c.request("GET", "/late204/2")
            r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"real"))
        self.assertEqual(self.raw["late204"].connections_total, 2)

    def test_interim_responses_are_not_relayed(self):
        """103 and 100 interim responses from the upstream are swallowed; the client gets the final 200."""
        with HttpConnection(self.port) as c:
            c.request("GET", "/interim/x")
            r = c.read_response()
        self.assertEqual(r.interim, [])
        self.assertEqual((r.status, r.body), (200, b"final"))

    def test_stale_idle_pooled_connection_is_not_an_error(self):
        """A pooled connection the upstream closed while idle is not used: the next GET gets a fresh connection."""
        up = self.raw["idleclose"]
        with HttpConnection(self.port) as c:
            c.request("GET", "/idleclose/1")
            self.assertEqual(c.read_response().status, 200)
            time.sleep(0.4)  # the upstream closes its side after 100 ms
            c.request("GET", "/idleclose/2")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["served"], "/idleclose/2")
        self.assertEqual(up.connections_total, 2)

    def test_pooled_connection_dying_under_a_get_is_retried(self):
        """A GET sent on a pooled connection that the upstream closes without answering is retried once on a
        fresh connection: the client sees 200."""
        up = self.raw["race"]
        series = 'obsgw_upstream_retries_total{upstream="race"}'
        retries_before = metric_value(self.gw.metrics(), series)
        with HttpConnection(self.port) as c:
            c.request("GET", "/race/1")
            self.assertEqual(c.read_response().status, 200)
            c.request("GET", "/race/2")
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["served"], "/race/2")
        self.assertIn(("GET", "/race/2", 1), up.received)  # the first try, dropped
        self.assertIn(("GET", "/race/2", 0), up.received)  # the retry on a new connection
        self.assertEqual(metric_value(self.gw.metrics(), series), retries_before + 1)

    def test_non_idempotent_request_is_not_retried(self):
        """A bodiless POST (not idempotent) on a pooled connection that dies after the upstream read it must not be
        sent again (RFC 9112 9.3.1: a proxy MUST NOT automatically retry non-idempotent requests): the upstream
        sees it once and the client gets a 502."""
        up = self.raw["racepost"]
        with HttpConnection(self.port) as c:
            c.request("GET", "/racepost/warm")
            self.assertEqual(c.read_response().status, 200)
            c.request("POST", "/racepost/charge-card", [("Content-Length", "0")])
            r = c.read_response()
        posts = [x for x in up.received if x[:2] == ("POST", "/racepost/charge-card")]
        self.assertEqual(len(posts), 1, f"the POST reached the upstream {len(posts)} times: {posts}")
        self.assert_error(r, 502, "upstream_reset")


if __name__ == "__main__":
    unittest.main()
