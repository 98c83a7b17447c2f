"""Malformed and request-smuggling shapes: each gets the right status with a JSON error body, the connection is
closed, and the upstream never receives a request (its hits are counted)."""

import select
import time
import unittest

from harness import (ConnectionClosed, Gateway, HttpConnection, build_request, chunk_encode, make_config, route,
                     upstream_entry, wait_until)
from upstream import EchoUpstream

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
LIMITS = {"max_request_line_bytes": 1024, "max_header_bytes": 4096, "max_header_count": 20,
          "max_body_bytes": 1024}
ALLOWED = ["GET", "HEAD", "POST", "PUT"]  # PATCH is answered 405 by the gateway without reading the body
HEADER_MS = 500
BODY_READ_MS = 500
IDLE_MS = 600


class SmugglingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        timeouts = {"header_ms": HEADER_MS, "body_read_ms": BODY_READ_MS, "idle_ms": IDLE_MS}
        cfg = make_config({"echo": upstream_entry(cls.up.url)},
                          [route("all", "echo", path_prefix="/", methods=ALLOWED)],
                          server={"limits": LIMITS, "timeouts": timeouts})
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def setUp(self):
        self.up.reset()

    def assert_rejected(self, raw, status, code):
        """Sends raw bytes; expects one JSON error response, then the close, no second response, no upstream hit."""
        with HttpConnection(self.port, timeout=5) as c:
            c.send(raw)
            try:
                r = c.read_response()
            except ConnectionClosed:
                self.fail(f"gateway closed the connection without answering (expected {status} {code})")
            closed = c.wait_closed(3)
            leftover = bytes(c.buf)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.header("Content-Type"), "application/json", r)
        body = r.json()
        self.assertEqual(body["error"], code, r)
        self.assertTrue(body["message"])
        self.assertEqual(r.header("Connection"), "close", r)
        self.assertTrue(closed, "connection left open after a rejected request")
        self.assertEqual(leftover, b"", "bytes after the error response (a smuggled request was answered?)")
        self.assertEqual(self.up.hits, 0, self.up.snapshot())
        return r

    # --- framing ---

    def test_content_length_and_transfer_encoding(self):
        """Content-Length together with Transfer-Encoding (either order) is 400 ambiguous_framing."""
        for first, second in [(b"Content-Length: 6", b"Transfer-Encoding: chunked"),
                              (b"Transfer-Encoding: chunked", b"Content-Length: 6")]:
            with self.subTest(first=first):
                raw = b"POST / HTTP/1.1\r\nHost: x\r\n" + first + b"\r\n" + second + b"\r\n\r\n0\r\n\r\nX" + SMUGGLED
                self.assert_rejected(raw, 400, "ambiguous_framing")

    def test_duplicate_content_length(self):
        """Two Content-Length headers, equal or not, are 400 ambiguous_framing."""
        for a, b in [(b"5", b"5"), (b"5", b"6")]:
            with self.subTest(values=(a, b)):
                raw = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + a + b"\r\nContent-Length: " + b +
                       b"\r\n\r\nhello" + SMUGGLED)
                self.assert_rejected(raw, 400, "ambiguous_framing")

    def test_invalid_content_length_values(self):
        """A Content-Length that is not plain digits ('5, 5', '+5', '-1', '0x5', empty) is 400 bad_content_length."""
        for value in (b"5, 5", b"+5", b"-1", b"0x5", b"", b"5 5", b"99999999999999999999"):
            with self.subTest(value=value):
                raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + value + b"\r\n\r\nhello" + SMUGGLED
                self.assert_rejected(raw, 400, "bad_content_length")

    def test_transfer_encoding_not_ending_in_chunked(self):
        """Transfer-Encoding: gzip (body length unknowable) is 400."""
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello" + SMUGGLED
        self.assert_rejected(raw, 400, "ambiguous_framing")

    def test_transfer_encoding_gzip_chunked_not_implemented(self):
        """Transfer-Encoding: gzip, chunked is 501 unsupported_transfer_coding."""
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED
        self.assert_rejected(raw, 501, "unsupported_transfer_coding")

    def test_duplicate_transfer_encoding(self):
        """Two Transfer-Encoding headers are 400 ambiguous_framing."""
        raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\n" + SMUGGLED)
        self.assert_rejected(raw, 400, "ambiguous_framing")

    def test_transfer_encoding_in_http10(self):
        """Transfer-Encoding in an HTTP/1.0 request is 400."""
        raw = b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED
        self.assert_rejected(raw, 400, "ambiguous_framing")

    def test_invalid_chunk_size(self):
        """A chunk size that is not hex (or is absurdly long) is 400 bad_chunked_encoding."""
        for size_line in (b"zz\r\n", b"0x5\r\n", b"-5\r\n", b"fffffffffffffffff\r\n", b"\r\n", b"5\n"):
            with self.subTest(size_line=size_line):
                raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + size_line +
                       b"hello\r\n0\r\n\r\n" + SMUGGLED)
                self.assert_rejected(raw, 400, "bad_chunked_encoding")

    def test_chunk_extension_garbage(self):
        """A chunk extension that is not ;name[=value] is 400 bad_chunked_encoding."""
        for ext in (b";=x", b";a b", b';a="unterminated', b";a=\x01", b";;"):
            with self.subTest(ext=ext):
                raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5" + ext +
                       b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED)
                self.assert_rejected(raw, 400, "bad_chunked_encoding")

    # --- head syntax ---

    def test_bare_lf(self):
        """A line ended by LF alone (request line or header) is 400 bare_lf."""
        for raw in (b"GET / HTTP/1.1\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\n\n"):
            with self.subTest(raw=raw):
                self.assert_rejected(raw, 400, "bare_lf")

    def test_bare_cr(self):
        """A CR inside a header line is 400 bare_cr."""
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, "bare_cr")

    def test_nul_and_controls_in_header_value(self):
        """NUL or another control character in a header value is 400 bad_header."""
        for value in (b"a\x00b", b"a\x01b", b"a\x7fb"):
            with self.subTest(value=value):
                self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + value + b"\r\n\r\n", 400, "bad_header")

    def test_obs_fold(self):
        """A continuation line (obs-fold, space or tab) is 400 obs_fold."""
        for fold in (b" folded", b"\tfolded"):
            with self.subTest(fold=fold):
                raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n" + fold + b"\r\n\r\n"
                self.assert_rejected(raw, 400, "obs_fold")

    def test_whitespace_before_colon(self):
        """'Name : value' (space or tab before the colon) is 400 bad_header; it must not become another header."""
        for line in (b"Transfer-Encoding : chunked", b"X-A\t: 1"):
            with self.subTest(line=line):
                raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n" + line + b"\r\n\r\nhello"
                self.assert_rejected(raw, 400, "bad_header")

    def test_bad_header_names(self):
        """Header lines without a colon or with non-token names are 400 bad_header."""
        for line in (b"NoColon", b": empty-name", b"X(A): 1", b"X A: 1"):
            with self.subTest(line=line):
                self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n", 400, "bad_header")

    def test_invalid_method(self):
        """A method with non-token characters is 400 bad_method."""
        for method in (b"GE(T", b"G\x01T", b"GET,"):
            with self.subTest(method=method):
                self.assert_rejected(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_method")

    def test_bad_request_target(self):
        """A target with characters outside RFC 3986 or broken percent-encoding is 400 bad_target."""
        for target in (b"/<script>", b"/a\"b", b"/%zz", b"/%4", b"relative", b"ftp://x/"):
            with self.subTest(target=target):
                self.assert_rejected(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_target")

    def test_unsupported_http_versions(self):
        """HTTP/1.2 and HTTP/2.0 request lines are 505."""
        for version in (b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9"):
            with self.subTest(version=version):
                self.assert_rejected(b"GET / " + version + b"\r\nHost: x\r\n\r\n", 505, "version_not_supported")

    def test_garbage_version(self):
        """A version that is not HTTP/d.d is 400 bad_version."""
        for version in (b"HTTP/1.1x", b"HTTX/1.1", b"http/1.1", b"HTTP/11", b"HTTP/1.a"):
            with self.subTest(version=version):
                self.assert_rejected(b"GET / " + version + b"\r\nHost: x\r\n\r\n", 400, "bad_version")

    def test_malformed_request_line(self):
        """A request line without exactly three space-separated parts is 400 bad_request_line."""
        for line in (b"GET  / HTTP/1.1", b"GET / HTTP/1.1 extra", b"GET /", b" GET / HTTP/1.1", b"GET"):
            with self.subTest(line=line):
                self.assert_rejected(line + b"\r\nHost: x\r\n\r\n", 400, "bad_request_line")

    def test_missing_or_repeated_host(self):
        """HTTP/1.1 without Host, with two Host headers, or with an invalid Host is 400 bad_host."""
        for raw in (b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"):
            with self.subTest(raw=raw):
                self.assert_rejected(raw, 400, "bad_host")

    def test_unknown_expectation(self):
        """An Expect other than 100-continue is 417."""
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\nhello"
        self.assert_rejected(raw, 417, "expectation_failed")

    # --- bodies the gateway does not read ---

    def test_skipped_body_is_not_parsed_as_a_request(self):
        """The small body of a request answered without forwarding (405) is skipped, never parsed as the next
        request; a real request after it is served (or the connection closes)."""
        raw = (b"PATCH / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED +
               b"GET /legit HTTP/1.1\r\nHost: x\r\n\r\n")
        with HttpConnection(self.port, timeout=5) as c:
            c.send(raw)
            r = c.read_response()
            self.assertEqual(r.status, 405, r)
            try:
                second = c.read_response()
            except ConnectionClosed:
                second = None
        if second is not None:
            self.assertEqual(second.json()["path"], "/legit")
        self.assertNotIn("/smuggled", [x.path for x in self.up.snapshot()])

    def test_expect_continue_on_rejected_request(self):
        """A request with Expect: 100-continue that is rejected gets no 100, only the final response and a close;
        a body sent anyway is not parsed as a request."""
        with HttpConnection(self.port, timeout=5) as c:
            c.send(b"PATCH / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                   % len(SMUGGLED))
            r = c.read_response()
            self.assertEqual(r.interim, [])
            self.assertEqual((r.status, r.header("Connection")), (405, "close"))
            try:
                c.send(SMUGGLED)
            except OSError:
                pass
            self.assertTrue(c.wait_closed(3))
            self.assertEqual(bytes(c.buf), b"")
        self.assertEqual(self.up.hits, 0)

    # --- limits ---

    def test_request_line_too_long(self):
        """A request line over max_request_line_bytes is 414 uri_too_long."""
        raw = b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assert_rejected(raw, 414, "uri_too_long")

    def test_request_line_too_long_before_its_end_arrives(self):
        """The 414 comes as soon as the limit is passed, without waiting for the line's end."""
        self.assert_rejected(b"GET /" + b"a" * 2000, 414, "uri_too_long")

    def test_header_section_too_large(self):
        """A header section over max_header_bytes is 431 headers_too_large."""
        raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n"
        self.assert_rejected(raw, 431, "headers_too_large")

    def test_too_many_headers(self):
        """More header fields than max_header_count is 431 too_many_headers."""
        raw = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(30)) + b"\r\n"
        self.assert_rejected(raw, 431, "too_many_headers")

    def test_body_over_limit_with_content_length(self):
        """A Content-Length over max_body_bytes is 413 before any byte goes upstream."""
        raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000
        self.assert_rejected(raw, 413, "body_too_large")

    def test_chunked_body_over_limit_in_one_chunk(self):
        """A chunked body whose first chunk already exceeds max_body_bytes is 413 and nothing goes upstream."""
        raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               chunk_encode([b"y" * 2000]))
        self.assert_rejected(raw, 413, "body_too_large")

    def test_chunked_body_over_limit_in_small_chunks(self):
        """A chunked body that passes max_body_bytes after some chunks is 413, and the upstream never gets a
        complete request (a streamed prefix may reach it, but the upstream connection is cut)."""
        raw = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
               chunk_encode([b"z" * 200] * 10))
        try:
            with HttpConnection(self.port, timeout=5) as c:
                c.send(raw)
                try:
                    r = c.read_response()
                except ConnectionClosed:
                    self.fail("gateway closed the connection without answering (expected 413 body_too_large)")
                self.assertTrue(c.wait_closed(3))
            self.assertEqual(r.status, 413, r)
            self.assertEqual(r.json()["error"], "body_too_large")
        finally:
            time.sleep(0.2)  # a streamed prefix may still be on its way to the upstream
            wait_until(lambda: all(x.finished for x in self.up.snapshot()), 3, message="upstream to see the cut")
        self.assertEqual([x for x in self.up.snapshot() if x.complete], [])

    def test_slow_body_gets_408(self):
        """A body that stops arriving for body_read_ms gets 408 request_timeout and the upstream never gets a
        complete request."""
        with HttpConnection(self.port, timeout=5) as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            start = time.monotonic()
            try:
                r = c.read_response()
            except ConnectionClosed:
                self.fail("gateway closed the connection without answering (expected 408 request_timeout)")
            finally:
                elapsed = time.monotonic() - start
                wait_until(lambda: all(x.finished for x in self.up.snapshot()), 3, message="upstream to see the cut")
        self.assertEqual(r.status, 408, r)
        self.assertEqual(r.json()["error"], "request_timeout")
        self.assertLess(elapsed, BODY_READ_MS / 1000 + 1.5)
        self.assertEqual([x for x in self.up.snapshot() if x.complete], [])

    def test_valid_request_still_served(self):
        """Control: a well-formed request on the same gateway reaches the upstream (the counting works)."""
        with HttpConnection(self.port) as c:
            c.send(build_request("POST", "/ok", body=b"hello", host_header="x"))
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.hits, 1)

    def test_parse_errors_are_counted(self):
        """Rejected malformed requests show up in /stats parse_errors and rejected_by_reason."""
        before = self.gw.stats()
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "obs_fold")
        after = self.gw.stats()
        self.assertEqual(after["parse_errors"], before["parse_errors"] + 1)
        self.assertEqual(after["rejected_by_reason"].get("obs_fold", 0),
                         before["rejected_by_reason"].get("obs_fold", 0) + 1)

    # --- timeouts ---

    def test_slow_header_gets_408(self):
        """A head trickled in one byte per 100 ms gets 408 request_timeout once header_ms has passed."""
        with HttpConnection(self.port, timeout=5) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            start = time.monotonic()
            for _ in range(40):  # at most 4 s
                readable, _, _ = select.select([c.sock], [], [], 0.1)
                if readable:
                    break
                try:
                    c.send(b"a")
                except OSError:
                    break
            r = c.read_response()
            elapsed = time.monotonic() - start
        self.assertEqual(r.status, 408, r)
        self.assertEqual(r.json()["error"], "request_timeout")
        self.assertGreaterEqual(elapsed, HEADER_MS / 1000 * 0.8)
        self.assertLess(elapsed, HEADER_MS / 1000 + 1.5)
        self.assertEqual(self.up.hits, 0)

    def test_idle_keep_alive_connection_closed(self):
        """A keep-alive connection with no next request is closed after idle_ms."""
        with HttpConnection(self.port, timeout=5) as c:
            c.request("GET", "/idle")
            self.assertEqual(c.read_response().status, 200)
            start = time.monotonic()
            self.assertTrue(c.wait_closed(IDLE_MS / 1000 + 2.0), "idle connection not closed")
            elapsed = time.monotonic() - start
            self.assertEqual(bytes(c.buf), b"")
        self.assertGreaterEqual(elapsed, IDLE_MS / 1000 * 0.8)



class LargeUnreadBodyTest(unittest.TestCase):
    """Default body limit (100 MB), so that a body too large to skip (over 64 KiB) can be sent."""

    def setUp(self):
        self.up = EchoUpstream()
        self.addCleanup(self.up.stop)
        self.gw = Gateway.start(make_config({"echo": upstream_entry(self.up.url)},
                                            [route("all", "echo", path_prefix="/", methods=ALLOWED)]))
        self.addCleanup(self.gw.stop)

    def test_large_unread_body_closes_the_connection(self):
        """A large body the gateway will not read (405) ends the connection after the response: its bytes are never
        taken as requests."""
        body = (SMUGGLED * 4000)[:100000]
        raw = b"PATCH / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        with HttpConnection(self.gw.port, timeout=5) as c:
            c.send(raw)
            r = c.read_response()
            self.assertTrue(c.wait_closed(3))
            self.assertEqual(bytes(c.buf), b"")
        self.assertEqual((r.status, r.header("Connection")), (405, "close"))
        self.assertEqual(self.up.hits, 0)


if __name__ == "__main__":
    unittest.main()
