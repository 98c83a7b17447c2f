"""Forwarding behaviour of gatewayd: what reaches the upstream, what comes back, routing, and HTTP/1.1
connection handling (keep-alive, pipelining, chunked bodies, 100-continue)."""

import hashlib
import re
import unittest

from harness import (Gateway, HttpConnection, build_request, chunk_encode, make_config, request, route,
                     upstream_entry)
from upstream import EchoUpstream

HEX32 = re.compile(r"^[0-9a-f]{32}$")


class ForwardingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        xform = {"type": "headers",
                 "request": {"set": {"X-Set": "gateway"}, "add": {"X-Added": "from-gateway"},
                             "remove": ["X-Remove-Me"]},
                 "response": {"set": {"X-Resp-Set": "gateway"}, "add": {"X-Resp-Added": "yes"},
                              "remove": ["X-Upstream-Internal"]}}
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url),
             "echo_ph": upstream_entry(cls.up.url, preserve_host=True),
             "echo_base": upstream_entry(cls.up.url + "/base/")},
            [route("echo", "echo", path_prefix="/echo"),
             route("exact", "echo", path="/api/exact"),
             route("prefix", "echo", path_prefix="/api"),
             route("longer", "echo", path_prefix="/api/v2"),
             route("host", "echo", host="special.test", path_prefix="/api"),
             route("wild", "echo", host="*.wild.test", path_prefix="/"),
             route("readonly", "echo", path="/readonly", methods=["GET", "HEAD"]),
             route("rewrite", "echo", path_prefix="/rw", rewrite_prefix="/backend/v1"),
             route("xform", "echo", path_prefix="/xform", policies=[xform]),
             route("preserve", "echo_ph", path_prefix="/ph"),
             route("based", "echo_base", path_prefix="/based")])
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def setUp(self):
        self.up.reset()

    def get(self, target, headers=None, method="GET", body=None, host=None):
        return request(self.port, method, target, headers, body, host_header=host)

    # --- basics ---

    def test_get_is_forwarded_with_upstream_host(self):
        """A GET reaches the upstream with its path and query intact and Host set to the upstream's authority."""
        r = self.get("/echo/hello?x=1&y=two")
        self.assertEqual(r.status, 200, r)
        seen = r.json()
        self.assertEqual(seen["method"], "GET")
        self.assertEqual(seen["target"], "/echo/hello?x=1&y=two")
        self.assertEqual(self.up.snapshot()[0].header_all("Host"), [f"127.0.0.1:{self.up.port}"])
        self.assertEqual(r.header("X-Route"), "echo")

    def test_path_is_canonical_and_query_preserved(self):
        """The upstream gets the canonical path (unreserved %XX decoded, reserved ones kept, slashes merged) and the
        query exactly as the client wrote it; an encoded slash in the path is refused."""
        r = self.get("/echo//a%20b/%41?x=%2F&y=1+2&z")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["target"], "/echo/a%20b/A?x=%2F&y=1+2&z")
        bad = self.get("/echo/a%2Fb")
        self.assertEqual(bad.status, 400, bad)
        self.assertEqual(bad.json()["error"], "bad_target")

    def test_absolute_form_target_routes_by_its_authority(self):
        """An absolute-form target's authority wins over the Host header for routing and X-Forwarded-Host."""
        r = self.get("http://special.test/api/exact?q=1", host="other.example")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Route"), "host")
        self.assertEqual(r.json()["target"], "/api/exact?q=1")
        self.assertEqual(self.up.snapshot()[0].header("X-Forwarded-Host"), "special.test")

    def test_preserve_host_sends_client_host(self):
        """With preserve_host the upstream gets the client's Host header instead of its own authority."""
        r = self.get("/ph/x", host="client.example:8080")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.snapshot()[0].header_all("Host"), ["client.example:8080"])

    def test_post_body_is_forwarded_intact(self):
        """A POST body arrives byte for byte (upstream sha256 and length match) with a Content-Length."""
        body = bytes(range(256)) * 400 + b"tail"
        r = self.get("/echo/upload", method="POST", body=body)
        self.assertEqual(r.status, 200, r)
        seen = r.json()
        self.assertEqual(seen["body_len"], len(body))
        self.assertEqual(seen["body_sha256"], hashlib.sha256(body).hexdigest())
        self.assertEqual(self.up.snapshot()[0].header("Content-Length"), str(len(body)))

    def test_empty_post_has_content_length_zero(self):
        """A body-less POST reaches the upstream with Content-Length: 0, never chunked."""
        r = self.get("/echo/empty", method="POST", headers=[("Content-Length", "0")])
        self.assertEqual(r.status, 200, r)
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header("Content-Length"), "0")
        self.assertIsNone(rec.header("Transfer-Encoding"))

    # --- headers ---

    def test_forwarded_headers(self):
        """X-Forwarded-For/-Proto/-Host are set by the gateway from the connection; a client's own X-Forwarded-*
        and Forwarded headers are dropped, not trusted (docs/configuration.md: the gateway is the edge)."""
        r = self.get("/echo/fwd", host="front.example:8443", headers=[
            ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"), ("Forwarded", "for=203.0.113.9;proto=https")])
        self.assertEqual(r.status, 200, r)
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header_all("X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(rec.header_all("X-Forwarded-Proto"), ["http"])
        self.assertEqual(rec.header_all("X-Forwarded-Host"), ["front.example:8443"])
        self.assertEqual(rec.header_all("Forwarded"), [])

    def test_valid_request_id_is_kept(self):
        """A valid client X-Request-Id goes upstream unchanged and comes back on the response."""
        rid = "client-id_1.2:3"
        r = self.get("/echo/rid", headers=[("X-Request-Id", rid)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.snapshot()[0].header_all("X-Request-Id"), [rid])
        self.assertEqual(r.header_all("X-Request-Id"), [rid])

    def test_request_id_is_generated_when_missing_or_invalid(self):
        """Without a (valid) X-Request-Id the gateway makes a fresh 32-hex id, sends it upstream and returns it."""
        ids = []
        for headers in ([], [("X-Request-Id", "has space!")], [("X-Request-Id", "a" * 129)]):
            self.up.reset()
            r = self.get("/echo/rid", headers=headers)
            self.assertEqual(r.status, 200, r)
            rid = r.header("X-Request-Id")
            self.assertRegex(rid, HEX32)
            self.assertEqual(self.up.snapshot()[0].header_all("X-Request-Id"), [rid])
            ids.append(rid)
        self.assertEqual(len(set(ids)), 3, ids)

    def test_duplicate_request_ids_collapse_to_one(self):
        """Two X-Request-Id headers from the client become exactly one upstream (the first, if valid)."""
        r = self.get("/echo/rid2", headers=[("X-Request-Id", "first-id"), ("X-Request-Id", "second-id")])
        self.assertEqual(self.up.snapshot()[0].header_all("X-Request-Id"), ["first-id"])
        self.assertEqual(r.header_all("X-Request-Id"), ["first-id"])

    def test_repeated_response_headers_are_kept(self):
        """Repeated upstream response headers (Set-Cookie) all reach the client, in order."""
        r = self.get("/echo/cookies?mode=cookies")
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1; Path=/", "b=2; Path=/"])

    def test_traceparent_passes_through(self):
        """W3C traceparent/tracestate reach the upstream unchanged."""
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        r = self.get("/echo/trace", headers=[("traceparent", tp), ("tracestate", "vendor=1")])
        self.assertEqual(r.status, 200, r)
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header_all("traceparent"), [tp])
        self.assertEqual(rec.header_all("tracestate"), ["vendor=1"])

    def test_hop_by_hop_request_headers_are_removed(self):
        """Connection, the headers it names, Keep-Alive, TE, Trailer, Upgrade (non-websocket) and Proxy-* stay
        at the gateway; ordinary headers pass."""
        r = self.get("/echo/hop", headers=[
            ("Connection", "keep-alive, X-Secret"), ("X-Secret", "s3cret"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Trailer", "X-T"), ("Upgrade", "h2c"), ("Proxy-Authorization", "Basic eA=="),
            ("Proxy-Connection", "keep-alive"), ("X-Kept", "yes")])
        self.assertEqual(r.status, 200, r)
        names = {n.lower() for n, _ in self.up.snapshot()[0].headers}
        for gone in ("connection", "x-secret", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization",
                     "proxy-connection"):
            self.assertNotIn(gone, names)
        self.assertIn("x-kept", names)

    def test_hop_by_hop_response_headers_are_removed(self):
        """The upstream's Connection-named headers, Keep-Alive and Proxy-* do not reach the client."""
        r = self.get("/echo/hop?mode=hop")
        self.assertEqual(r.status, 200, r)
        names = {n.lower() for n, _ in r.headers}
        for gone in ("x-resp-hop", "keep-alive", "proxy-authenticate"):
            self.assertNotIn(gone, names)
        self.assertEqual(r.header("X-Resp-Kept"), "1")

    def test_header_transform_policy(self):
        """The headers policy sets, adds and removes request headers and edits response headers."""
        r = self.get("/xform/a?internal=1", headers=[
            ("X-Set", "client"), ("X-Added", "from-client"), ("X-Remove-Me", "1")])
        self.assertEqual(r.status, 200, r)
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header_all("X-Set"), ["gateway"])
        self.assertEqual(rec.header_all("X-Added"), ["from-client", "from-gateway"])
        self.assertEqual(rec.header_all("X-Remove-Me"), [])
        self.assertEqual(r.header_all("X-Resp-Set"), ["gateway"])
        self.assertEqual(r.header_all("X-Resp-Added"), ["yes"])
        self.assertEqual(r.header_all("X-Upstream-Internal"), [])

    # --- routing ---

    def test_rewrite_prefix(self):
        """rewrite_prefix replaces the matched prefix and keeps the rest of the path and the query."""
        r = self.get("/rw/items/7?q=1")
        self.assertEqual(r.json()["target"], "/backend/v1/items/7?q=1")
        r = self.get("/rw")
        self.assertEqual(r.json()["target"], "/backend/v1")

    def test_upstream_base_path_is_prepended(self):
        """An upstream URL with a path (here /base/) prefixes every forwarded path."""
        r = self.get("/based/x?q=1")
        self.assertEqual(r.json()["target"], "/base/based/x?q=1")

    def test_routing_precedence(self):
        """Exact path beats prefixes, the longest prefix wins, prefixes match whole segments, and a host-specific
        route beats a host-less one."""
        cases = [
            ("/api/exact", None, "exact"),
            ("/api/exact/more", None, "prefix"),
            ("/api/other", None, "prefix"),
            ("/api/v2", None, "longer"),
            ("/api/v2/x", None, "longer"),
            ("/api/exact", "special.test", "host"),
            ("/api/exact", "SPECIAL.test:8080", "host"),
            ("/anything", "a.wild.test", "wild"),
            ("/api/exact", "a.b.wild.test", "wild"),
        ]
        for path, host, expected in cases:
            with self.subTest(path=path, host=host):
                r = self.get(path, host=host)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("X-Route"), expected)
        for path, host in [("/apix", None), ("/nothing", None), ("/anything", "wild.test")]:
            with self.subTest(path=path, host=host):
                self.assertEqual(self.get(path, host=host).status, 404)
        self.assertEqual(len(self.up.snapshot()), len(cases))

    def test_no_route_is_404_json(self):
        """No matching route: 404 JSON {error: no_route, message, request_id} and the upstream is not called."""
        r = self.get("/nothing/here")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("Content-Type"), "application/json")
        body = r.json()
        self.assertEqual(body["error"], "no_route")
        self.assertTrue(body["message"])
        self.assertEqual(body["request_id"], r.header("X-Request-Id"))
        self.assertEqual(self.up.hits, 0)

    def test_wrong_method_is_405_with_allow(self):
        """A route matched by path but not method answers 405 JSON with an Allow header."""
        r = self.get("/readonly", method="POST", body=b"x")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.json()["error"], "method_not_allowed")
        self.assertEqual(r.header("Allow"), "GET, HEAD")
        self.assertEqual(self.up.hits, 0)

    def test_dot_segments_are_normalised_before_routing(self):
        """'..' and '.' (also percent-encoded) are resolved before routing; climbing above the root is 400."""
        r = self.get("/xform/../echo/./a/%2e%2e/b")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Route"), "echo")
        self.assertEqual(r.json()["path"], "/echo/b")
        for bad in ("/../etc/passwd", "/echo/../../x", "/%2e%2e/x"):
            with self.subTest(path=bad):
                r = self.get(bad)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json()["error"], "bad_target")
        self.assertEqual(self.up.hits, 1)

    def test_head_response_has_no_body(self):
        """HEAD is relayed with the upstream's Content-Length and no body; the connection stays in sync."""
        with HttpConnection(self.port) as c:
            c.request("HEAD", "/echo/head")
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200, r)
            self.assertGreater(int(r.header("Content-Length")), 0)
            c.request("GET", "/echo/after-head")
            r2 = c.read_response()
            self.assertEqual(r2.json()["path"], "/echo/after-head")
        self.assertEqual([x.method for x in self.up.snapshot()], ["HEAD", "GET"])

    def test_bodiless_statuses_relayed(self):
        """204 and 304 from the upstream reach the client without a body, and the connection stays in sync."""
        with HttpConnection(self.port) as c:
            for status in (204, 304):
                c.request("GET", f"/echo/nobody?status={status}")
                r = c.read_response()
                self.assertEqual((r.status, r.body), (status, b""))
                self.assertIsNone(r.header("Transfer-Encoding"))
            c.request("GET", "/echo/after")
            self.assertEqual(c.read_response().json()["path"], "/echo/after")

    # --- connections ---

    def test_keep_alive_reuses_upstream_connection(self):
        """Sequential requests on one keep-alive client connection share one pooled upstream connection."""
        before = self.up.connections_total
        with HttpConnection(self.port) as c:
            ports = set()
            for i in range(6):
                c.request("GET", f"/echo/ka/{i}")
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                ports.add(r.json()["peer_port"])
        self.assertEqual(len(ports), 1, ports)
        self.assertLessEqual(self.up.connections_total - before, 1)

    def test_pipelined_requests_answered_in_order(self):
        """Three requests sent in one write are answered in order, each with its own response."""
        data = (build_request("GET", "/echo/p1", host_header="h") +
                build_request("POST", "/echo/p2", body=b"second", host_header="h") +
                build_request("GET", "/echo/p3", host_header="h"))
        with HttpConnection(self.port) as c:
            c.send(data)
            got = [c.read_response().json() for _ in range(3)]
        self.assertEqual([g["path"] for g in got], ["/echo/p1", "/echo/p2", "/echo/p3"])
        self.assertEqual(got[1]["body_sha256"], hashlib.sha256(b"second").hexdigest())

    def test_chunked_request_body_forwarded_intact(self):
        """A chunked request body (with extensions and a trailer) reaches the upstream intact, still chunked."""
        pieces = [b"a" * 10, bytes(range(256)) * 50, b"z" * 70000, b"end"]
        body = chunk_encode(pieces, extension=b";name=value")[:-2] + b"X-Trailer: 1\r\n\r\n"
        with HttpConnection(self.port) as c:
            c.send(build_request("PUT", "/echo/chunked", [("Transfer-Encoding", "chunked")], host_header="h") + body)
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        whole = b"".join(pieces)
        self.assertEqual(r.json()["body_len"], len(whole))
        self.assertEqual(r.json()["body_sha256"], hashlib.sha256(whole).hexdigest())
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header("Transfer-Encoding"), "chunked")
        self.assertIsNone(rec.header("Content-Length"))

    def test_expect_100_continue(self):
        """With Expect: 100-continue the client gets '100 Continue' before sending the body, then the final
        response; the upstream does not see the Expect header."""
        body = b"after-continue"
        with HttpConnection(self.port, timeout=5) as c:
            c.send(build_request("POST", "/echo/expect", [("Expect", "100-continue"),
                                                          ("Content-Length", str(len(body)))], host_header="h"))
            version, status, _, _ = c.read_head()
            self.assertEqual(status, 100)
            c.send(body)
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_sha256"], hashlib.sha256(body).hexdigest())
        self.assertIsNone(self.up.snapshot()[0].header("Expect"))

    def test_chunked_upstream_response_relayed(self):
        """A chunked upstream response reaches an HTTP/1.1 client complete, and the connection stays usable."""
        with HttpConnection(self.port) as c:
            c.request("GET", "/echo/ch?mode=chunked")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.chunked)
            self.assertEqual(r.json()["path"], "/echo/ch")
            c.request("GET", "/echo/next")
            self.assertEqual(c.read_response().json()["path"], "/echo/next")

    def test_close_delimited_upstream_response_relayed(self):
        """A close-delimited upstream body is re-framed as chunked for HTTP/1.1 (keep-alive kept) and sent
        until close to HTTP/1.0."""
        with HttpConnection(self.port) as c:
            c.request("GET", "/echo/cl?mode=close")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.chunked)
            self.assertEqual(r.json()["path"], "/echo/cl")
            c.request("GET", "/echo/next")
            self.assertEqual(c.read_response().json()["path"], "/echo/next")
        with HttpConnection(self.port) as c:
            c.request("GET", "/echo/cl10?mode=close", version="HTTP/1.0")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertIsNone(r.header("Content-Length"))
            self.assertIsNone(r.header("Transfer-Encoding"))
            self.assertEqual(r.json()["path"], "/echo/cl10")
            self.assertTrue(c.wait_closed(2))

    def test_http10_client_gets_plain_body_from_chunked_upstream(self):
        """A chunked upstream response reaches an HTTP/1.0 client de-chunked, delimited by close."""
        with HttpConnection(self.port) as c:
            c.request("GET", "/echo/old?mode=chunked", version="HTTP/1.0")
            r = c.read_response()
            self.assertTrue(c.wait_closed(2))
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(r.json()["path"], "/echo/old")

    def test_http10_keep_alive(self):
        """An HTTP/1.0 client asking for keep-alive gets it (Connection: keep-alive) and can send a second request."""
        with HttpConnection(self.port) as c:
            for i in range(2):
                c.request("GET", f"/echo/ka10/{i}", [("Connection", "keep-alive")], version="HTTP/1.0")
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header("Connection"), "keep-alive")
                self.assertEqual(r.json()["path"], f"/echo/ka10/{i}")

    def test_connection_close_is_honoured(self):
        """A request with Connection: close gets Connection: close and the gateway closes the connection."""
        with HttpConnection(self.port) as c:
            c.request("GET", "/echo/bye", [("Connection", "close")])
            r = c.read_response()
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(c.wait_closed(2))

    def test_access_log_line(self):
        """Each forwarded request yields one JSON access log line with the request's facts."""
        r = self.get("/echo/logged?z=1", method="POST", body=b"12345", headers=[("X-Request-Id", "log-me-1")])
        self.assertEqual(r.status, 200, r)
        line = self.gw.wait_access(lambda l: l.get("request_id") == "log-me-1")
        self.assertEqual(line["method"], "POST")
        self.assertEqual(line["path"], "/echo/logged")
        self.assertEqual(line["route"], "echo")
        self.assertEqual(line["upstream"], "echo")
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["bytes_in"], 5)
        self.assertEqual(line["bytes_out"], len(r.body))
        self.assertEqual(line["client_ip"], "127.0.0.1")
        self.assertGreaterEqual(line["duration_ms"], 0)


if __name__ == "__main__":
    unittest.main()
