"""Signed forwarding checked by an independent implementation: the README's Python verifier (extracted from the
README and run as it is) against what gatewayd forwarded to a real upstream; and agents that sign their requests,
verified by the hmac Authenticator on the way in."""

import hashlib
import hmac
import os
import re
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import LOCALHOST, Gateway, HttpConnection, chunk_encode, make_config, request, route, upstream_entry

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
GATEWAY_SECRET = b"gateway-secret-0123456789abcdef-0123456789"
AGENT_SECRET = b"agent-secret-abcdefghijklmnopqrstuvwxyz-0123"


def readme_verifier():
    """The verify_obsgw_signature function exactly as the README shows it."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"<!-- signature-verifier -->\s*```python\n(.*?)```\s*<!-- /signature-verifier -->", text, re.S)
    if not block:
        raise AssertionError("README has no signature-verifier block")
    namespace = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    return namespace


class CaptureUpstream:
    """Records what arrives as http.server parses it (headers as an email.message.Message, the raw target)."""

    def __init__(self):
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append((self.command, self.path, self.headers, body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self):
        return self.requests[-1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def agent_sign(method, target, headers, body, key_id, secret, ts=None, signed=("content-type", "x-scope-orgid")):
    """An agent's signer, written from the documented canonical string."""
    ts = str(int(time.time()) if ts is None else ts)
    digest = hashlib.sha256(body).hexdigest()
    lines = ["OBSGW-HMAC-SHA256", ts, key_id, method, target, ";".join(signed)]
    lookup = {k.lower(): v for k, v in headers.items()}
    lines += [n + ":" + lookup.get(n, "").strip() for n in signed]
    lines.append(digest)
    mac = hmac.new(secret, "\n".join(lines).encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out.update({"X-Gateway-Timestamp": ts, "X-Gateway-Key-Id": key_id, "X-Gateway-Signed-Headers": ";".join(signed),
                "X-Gateway-Content-SHA256": digest, "X-Gateway-Signature": "sha256=" + mac})
    return out


class SignedForwardingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ns = readme_verifier()
        cls.verify = staticmethod(cls.ns["verify_obsgw_signature"])
        cls.tmp = tempfile.mkdtemp(prefix="obsgw-sign-")
        gw_key = os.path.join(cls.tmp, "gw.key")
        agent_key = os.path.join(cls.tmp, "agent.key")
        with open(gw_key, "wb") as f:
            f.write(GATEWAY_SECRET + b"\n")
        with open(agent_key, "wb") as f:
            f.write(AGENT_SECRET)
        cls.up = CaptureUpstream()
        sign = {"type": "sign", "key_id": "gw-1", "secret_file": gw_key, "headers": ["x-scope-orgid", "content-type"],
                "max_body_bytes": 4096}
        config = make_config(
            {"backend": upstream_entry(f"http://{LOCALHOST}:{cls.up.port}/base")},
            [route("api", "backend", path_prefix="/api", rewrite_prefix="/v1", tag=False,
                   policies=[{"type": "headers", "request": {"set": {"X-Scope-OrgID": "acme"}}}, sign]),
             route("agents", "backend", path_prefix="/agents", tag=False,
                   policies=[{"type": "hmac", "window_s": 60,
                              "clients": [{"key_id": "agent-7", "secret_file": agent_key, "subject": "edge-agent",
                                           "tenants": ["acme"]}]},
                             {"type": "tenant"}, sign]),
             route("plain", "backend", path_prefix="/plain", tag=False)])
        cls.gw = Gateway.start(config)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.up.stop()

    def forwarded(self):
        method, target, headers, body = self.up.last()
        return method, target, headers, body

    def test_post_verifies_with_the_readme_code(self):
        body = b'{"streams":[{"stream":{"app":"a"},"values":[["1","line"]]}]}'
        r = request(self.gw.port, "POST", "/api/push?x=1&y=2", {"Content-Type": "application/json"}, body)
        self.assertEqual(r.status, 200)
        method, target, headers, got = self.forwarded()
        self.assertEqual(target, "/base/v1/push?x=1&y=2")  # signed as the upstream receives it
        self.assertEqual(got, body)
        self.assertEqual(headers["X-Gateway-Key-Id"], "gw-1")
        self.assertEqual(headers["X-Gateway-Signed-Headers"], "x-scope-orgid;content-type")
        self.assertTrue(self.verify(method, target, headers, got, {"gw-1": GATEWAY_SECRET}))
        # Rotation: a verifier that knows several keys.
        self.assertTrue(self.verify(method, target, headers, got, {"gw-0": b"old" * 20, "gw-1": GATEWAY_SECRET}))

    def test_anything_changed_fails(self):
        body = b"payload-" + os.urandom(8).hex().encode()
        r = request(self.gw.port, "PUT", "/api/item", {"Content-Type": "text/plain"}, body)
        self.assertEqual(r.status, 200)
        method, target, headers, got = self.forwarded()
        keys = {"gw-1": GATEWAY_SECRET}
        self.assertTrue(self.verify(method, target, headers, got, keys))
        self.assertFalse(self.verify(method, target, headers, got + b"x", keys))
        self.assertFalse(self.verify("POST", target, headers, got, keys))
        self.assertFalse(self.verify(method, target + "?a=1", headers, got, keys))
        self.assertFalse(self.verify(method, target, headers, got, {"gw-1": b"another secret of enough length!!"}))
        self.assertFalse(self.verify(method, target, headers, got, {"gw-2": GATEWAY_SECRET}))
        tampered = headers.__class__()
        for k, v in headers.items():
            tampered[k] = "globex" if k.lower() == "x-scope-orgid" else v
        self.assertFalse(self.verify(method, target, tampered, got, keys))

        class LaterClock:  # ten minutes later: outside the window
            @staticmethod
            def time():
                return time.time() + 600

        saved = self.ns["time"]
        self.ns["time"] = LaterClock
        try:
            self.assertFalse(self.verify(method, target, headers, got, keys))
        finally:
            self.ns["time"] = saved

    def test_get_without_body_and_client_copies_replaced(self):
        r = request(self.gw.port, "GET", "/api/q", {"X-Gateway-Signature": "sha256=forged", "X-Gateway-Key-Id": "gw-1",
                                                    "X-Gateway-Timestamp": "1"})
        self.assertEqual(r.status, 200)
        method, target, headers, got = self.forwarded()
        self.assertEqual(len(headers.get_all("X-Gateway-Signature")), 1)
        self.assertNotEqual(headers["X-Gateway-Signature"], "sha256=forged")
        self.assertEqual(headers["X-Gateway-Content-SHA256"], hashlib.sha256(b"").hexdigest())
        self.assertTrue(self.verify(method, target, headers, got, {"gw-1": GATEWAY_SECRET}))

    def test_client_signature_headers_never_reach_an_unsigned_route(self):
        """On a route that neither signs nor verifies, a client's X-Gateway-* headers (a captured signed request
        replayed through the gateway) are removed, not forwarded."""
        r = request(self.gw.port, "GET", "/plain/x", {"X-Gateway-Signature": "sha256=" + "0" * 64,
                                                      "X-Gateway-Key-Id": "gw-1", "X-Gateway-Timestamp": "1",
                                                      "x-gateway-content-sha256": "abc", "X-Gateway-Other": "y"})
        self.assertEqual(r.status, 200)
        method, target, headers, got = self.forwarded()
        self.assertEqual(target, "/base/plain/x")
        self.assertEqual([k for k in headers.keys() if k.lower().startswith("x-gateway-")], [])

    def test_chunked_body_is_held_and_signed(self):
        pieces = [b"a" * 100, b"b" * 200, b"c" * 300]
        r = request(self.gw.port, "POST", "/api/chunked", {"Transfer-Encoding": "chunked"}, chunk_encode(pieces))
        self.assertEqual(r.status, 200)
        method, target, headers, got = self.forwarded()
        self.assertEqual(got, b"".join(pieces))
        self.assertTrue(self.verify(method, target, headers, got, {"gw-1": GATEWAY_SECRET}))

    def test_body_arriving_in_pieces_is_hashed_as_it_comes(self):
        """A body sent in three segments with pauses reaches the gateway as several reads, each hashed as it
        arrives (Content-Length and chunked alike): the signature verifies with the README code."""
        pieces = [b"x" * 1500, b"y" * 700, b"z" * 1200]
        for framing in ("length", "chunked"):
            with HttpConnection(self.gw.port) as c:
                if framing == "length":
                    c.send(b"POST /api/pieces HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\n"
                           b"Content-Length: %d\r\n\r\n" % sum(map(len, pieces)))
                    parts = pieces
                else:
                    c.send(b"POST /api/pieces HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
                    parts = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
                for part in parts:
                    time.sleep(0.05)
                    c.send(part)
                r = c.read_response()
            self.assertEqual(r.status, 200, (framing, r))
            method, target, headers, got = self.forwarded()
            self.assertEqual(got, b"".join(pieces))
            self.assertEqual(headers["X-Gateway-Content-SHA256"], hashlib.sha256(got).hexdigest())
            self.assertTrue(self.verify(method, target, headers, got, {"gw-1": GATEWAY_SECRET}), framing)

    def test_body_over_the_signing_limit_is_413(self):
        before = len(self.up.requests)
        r = request(self.gw.port, "POST", "/api/big", {"Content-Type": "text/plain"}, b"x" * 5000)
        self.assertEqual(r.status, 413)
        self.assertEqual(len(self.up.requests), before)

    def test_signed_agent_is_verified_then_the_gateway_signs_anew(self):
        body = b'{"resourceMetrics":[]}'
        headers = agent_sign("POST", "/agents/v1/metrics?src=edge", {"Content-Type": "application/json",
                                                                    "X-Scope-OrgID": "acme"}, body, "agent-7", AGENT_SECRET)
        r = request(self.gw.port, "POST", "/agents/v1/metrics?src=edge", headers, body)
        self.assertEqual(r.status, 200, r.body)
        method, target, fwd, got = self.forwarded()
        self.assertEqual(fwd["X-Gateway-Key-Id"], "gw-1")  # the agent's signature was consumed, the gateway's added
        self.assertEqual(fwd["X-Scope-OrgID"], "acme")
        self.assertTrue(self.verify(method, target, fwd, got, {"gw-1": GATEWAY_SECRET}))

        replay = request(self.gw.port, "POST", "/agents/v1/metrics?src=edge", headers, body)
        self.assertEqual(replay.status, 401)
        self.assertIn("replayed", replay.json()["message"])

        tampered = agent_sign("POST", "/agents/v1/metrics", {"Content-Type": "application/json",
                                                             "X-Scope-OrgID": "acme"}, body, "agent-7", AGENT_SECRET)
        r = request(self.gw.port, "POST", "/agents/v1/metrics", tampered, body + b" ")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "invalid_signature")
        self.assertIn("body_mismatch", r.json()["message"])

        stale = agent_sign("POST", "/agents/x", {"Content-Type": "text/plain", "X-Scope-OrgID": "acme"}, b"",
                           "agent-7", AGENT_SECRET, ts=int(time.time()) - 120)
        r = request(self.gw.port, "POST", "/agents/x", stale, b"")
        self.assertEqual(r.status, 401)
        self.assertIn("stale", r.json()["message"])

        forged = agent_sign("POST", "/agents/x", {"X-Scope-OrgID": "acme"}, b"", "agent-7", b"not the agent's secret at all!!!!")
        r = request(self.gw.port, "POST", "/agents/x", forged, b"")
        self.assertEqual(r.status, 401)
        self.assertIn("bad_signature", r.json()["message"])
        self.assertIn("OBSGW-HMAC-SHA256", r.header("WWW-Authenticate"))

        r = request(self.gw.port, "POST", "/agents/x", {"Content-Type": "text/plain"}, b"unsigned")
        self.assertEqual(r.status, 401)
        self.assertIn("missing", r.json()["message"])


if __name__ == "__main__":
    unittest.main()
