"""Bodies stream through gatewayd without being buffered (50 MB each way under a memory bound, first bytes pass
before the rest exists), and WebSocket upgrades become a two-way byte tunnel."""

import base64
import hashlib
import os
import threading
import time
import unittest

from harness import (Gateway, HttpConnection, build_request, make_config, pattern_chunks, pattern_sha256, route,
                     upstream_entry)
from upstream import EchoUpstream, RawUpstream, read_exact, read_request_head

MB = 1024 * 1024
BIG = 50 * MB
MAX_GROWTH_KB = 32 * 1024
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --- minimal WebSocket framing (RFC 6455) -------------------------------------------------------------------

def ws_frame(payload, opcode=1, mask=True):
    head = bytearray([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_read_frame(take):
    """Reads one frame with take(n) -> exactly n bytes. Returns (opcode, payload), unmasking if needed."""
    b0, b1 = take(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(take(2), "big")
    elif n == 127:
        n = int.from_bytes(take(8), "big")
    key = take(4) if b1 & 0x80 else None
    payload = take(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def websocket_echo_server(conn, up):
    """Answers the upgrade with 101 plus a first message in the same write, then echoes every text frame."""
    buf = bytearray()
    head = read_request_head(conn, buf)
    if head is None:
        return
    up.record(head)
    _, _, headers = head
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + ws_accept(headers["sec-websocket-key"]).encode() + b"\r\n\r\n" +
                 ws_frame(b"hello-from-upstream", mask=False))
    take = lambda n: read_exact(conn, buf, n)  # noqa: E731
    while True:
        opcode, payload = ws_read_frame(take)
        if opcode == 8:
            conn.sendall(ws_frame(payload, opcode=8, mask=False))
            return
        conn.sendall(ws_frame(b"echo:" + payload, opcode=opcode, mask=False))


class ClientTake:
    """take(n) over an HttpConnection's buffer, for reading frames after the 101."""

    def __init__(self, conn):
        self.c = conn

    def __call__(self, n):
        while len(self.c.buf) < n:
            if not self.c.fill():
                raise ConnectionError("tunnel closed")
        out = bytes(self.c.buf[:n])
        del self.c.buf[:n]
        return out


class StreamingTest(unittest.TestCase):
    def setUp(self):
        self.up = EchoUpstream()
        self.addCleanup(self.up.stop)
        self.gw = Gateway.start(make_config({"echo": upstream_entry(self.up.url)},
                                            [route("echo", "echo", path_prefix="/echo")]))
        self.addCleanup(self.gw.stop)

    def use_upstream(self, raw):
        """Reloads the gateway to send everything to `raw`."""
        line = self.gw.reload(make_config({"raw": upstream_entry(raw.url)}, [route("raw", "raw", path_prefix="/")]))
        self.assertEqual(line["msg"], "configuration reloaded", line)

    def test_50mb_each_way_within_memory_bound(self):
        """A 50 MB Content-Length upload, a 50 MB chunked upload and a 50 MB download pass intact (sha256) while
        gatewayd's peak RSS (VmHWM) grows by less than 32 MB: bodies are streamed, not buffered."""
        with HttpConnection(self.gw.port, timeout=30) as c:
            c.request("GET", "/echo/warm-up")
            self.assertEqual(c.read_response().status, 200)
        baseline = max(self.gw.vm_kb("VmHWM"), self.gw.vm_kb("VmRSS"))
        expected = pattern_sha256(BIG)

        with HttpConnection(self.gw.port, timeout=30) as c:
            c.send(build_request("POST", "/echo/upload", [("Content-Length", str(BIG))], host_header="h"))
            for piece in pattern_chunks(BIG):
                c.send(piece)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual((r.json()["body_len"], r.json()["body_sha256"]), (BIG, expected))

            c.send(build_request("POST", "/echo/upload-chunked", [("Transfer-Encoding", "chunked")], host_header="h"))
            for piece in pattern_chunks(BIG, piece=300 * 1024):
                c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            c.send(b"0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual((r.json()["body_len"], r.json()["body_sha256"]), (BIG, expected))

            h = hashlib.sha256()
            count = [0]

            def sink(data):
                h.update(data)
                count[0] += len(data)

            c.request("GET", f"/echo/download?download={BIG}")
            r = c.read_response(sink=sink)
            self.assertEqual(r.status, 200, r)
            self.assertEqual((count[0], h.hexdigest()), (BIG, expected))

        growth = self.gw.vm_kb("VmHWM") - baseline
        self.assertLess(growth, MAX_GROWTH_KB, f"VmHWM grew by {growth} kB from {baseline} kB")

    def test_download_to_a_reader_that_stalls_arrives_intact(self):
        """A client that stops reading mid-download fills the socket: gatewayd's writes then go out in part, without
        waiting, and the rest through the reactor once the client reads again. Every byte arrives, in order."""
        size = 24 * MB
        expected = pattern_sha256(size)
        with HttpConnection(self.gw.port, timeout=30) as c:
            c.request("GET", f"/echo/download?download={size}")
            time.sleep(1.0)  # every buffer between the upstream and this client fills up
            h = hashlib.sha256()
            count = [0]
            next_pause = [2 * MB]

            def sink(data):
                h.update(data)
                count[0] += len(data)
                if count[0] >= next_pause[0]:  # stall again every 2 MB
                    next_pause[0] += 2 * MB
                    time.sleep(0.05)

            r = c.read_response(sink=sink)
            self.assertEqual(r.status, 200, r)
            self.assertEqual((count[0], h.hexdigest()), (size, expected))
            c.request("GET", "/echo/after")  # the connection is still in step
            self.assertEqual(c.read_response().status, 200)

    def test_response_streams_before_upstream_finishes(self):
        """The first part of a response body reaches the client while the upstream still holds back the rest."""
        release = threading.Event()

        def trickle(conn, up):
            if read_request_head(conn, bytearray()):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
                release.wait(5)
                conn.sendall(b"-last")

        raw = RawUpstream(trickle)
        self.addCleanup(raw.stop)
        self.addCleanup(release.set)
        self.use_upstream(raw)
        with HttpConnection(self.gw.port, timeout=3) as c:
            c.request("GET", "/t")
            c.read_head()
            deadline = time.monotonic() + 3
            while len(c.buf) < 5 and time.monotonic() < deadline:
                c.fill()
            self.assertEqual(bytes(c.buf), b"first", "the start of the body was held back")
            release.set()
            c.fill()
            while len(c.buf) < 10 and c.fill():
                pass
            self.assertEqual(bytes(c.buf), b"first-last")

    def test_request_body_streams_before_client_finishes(self):
        """The first part of a request body reaches the upstream before the client has sent the rest."""
        got_first = threading.Event()

        def receiver(conn, up):
            buf = bytearray()
            if read_request_head(conn, buf):
                read_exact(conn, buf, 5)
                got_first.set()
                read_exact(conn, buf, 5)
                conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

        raw = RawUpstream(receiver)
        self.addCleanup(raw.stop)
        self.use_upstream(raw)
        with HttpConnection(self.gw.port, timeout=5) as c:
            c.send(build_request("POST", "/t", [("Content-Length", "10")], host_header="h") + b"first")
            self.assertTrue(got_first.wait(3), "the upstream did not get the start of the body")
            c.send(b"-last")
            self.assertEqual(c.read_response().status, 204)


class WebSocketTest(unittest.TestCase):
    def setUp(self):
        self.ws = RawUpstream(websocket_echo_server)
        self.addCleanup(self.ws.stop)
        cfg = make_config({"ws": upstream_entry(self.ws.url),
                           "ws_idle": upstream_entry(self.ws.url, tunnel_idle_timeout_ms=500)},
                          [route("ws", "ws", path_prefix="/ws"), route("ws_idle", "ws_idle", path_prefix="/idle")])
        self.gw = Gateway.start(cfg)
        self.addCleanup(self.gw.stop)

    def handshake(self, c, path):
        key = base64.b64encode(os.urandom(16)).decode()
        c.request("GET", path, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")])
        r = c.read_response()
        self.assertEqual(r.status, 101, r)
        self.assertEqual(r.header("Sec-WebSocket-Accept"), ws_accept(key))
        self.assertEqual(r.header("Upgrade").lower(), "websocket")
        return key

    def test_websocket_tunnel_carries_bytes_both_ways(self):
        """The upgrade reaches the upstream with its WebSocket headers, the 101 comes back, and frames flow both
        ways (including a message sent with the 101 and a 200 kB message)."""
        with HttpConnection(self.gw.port, timeout=5) as c:
            key = self.handshake(c, "/ws/chat")
            take = ClientTake(c)
            self.assertEqual(ws_read_frame(take), (1, b"hello-from-upstream"))
            for msg in (b"ping-1", b"ping-2", os.urandom(200 * 1024)):
                c.send(ws_frame(msg, opcode=2))
                self.assertEqual(ws_read_frame(take), (2, b"echo:" + msg))
            c.send(ws_frame(b"\x03\xe8", opcode=8))
            self.assertEqual(ws_read_frame(take), (8, b"\x03\xe8"))
        _, target, headers = self.ws.received[0]
        self.assertEqual(target, "/ws/chat")
        self.assertEqual(headers["upgrade"].lower(), "websocket")
        self.assertIn("upgrade", headers["connection"].lower())
        self.assertEqual(headers["sec-websocket-key"], key)
        self.assertEqual(headers["sec-websocket-version"], "13")
        self.assertEqual(headers["x-forwarded-for"], "127.0.0.1")

    def test_idle_tunnel_is_closed(self):
        """A tunnel with no traffic for tunnel_idle_timeout_ms is closed."""
        with HttpConnection(self.gw.port, timeout=5) as c:
            self.handshake(c, "/idle/x")
            self.assertEqual(ws_read_frame(ClientTake(c)), (1, b"hello-from-upstream"))
            start = time.monotonic()
            self.assertTrue(c.wait_closed(3), "idle tunnel left open")
            self.assertGreaterEqual(time.monotonic() - start, 0.4)


if __name__ == "__main__":
    unittest.main()
