"""Upstreams for the gatewayd integration tests, independent of gatewayd's own HTTP code.

EchoUpstream: a ThreadingHTTPServer (HTTP/1.1, keep-alive) that records every request it gets and answers with
a JSON description of it: method, target, headers, body length and sha256, and the TCP peer port (which tells
connections apart). Query parameters steer the answer:
    delay_ms=N        wait N ms before answering
    status=N          answer with this status
    mode=chunked      answer with Transfer-Encoding: chunked (several chunks)
    mode=close        answer without Content-Length, delimited by closing the connection
    mode=hop          answer with hop-by-hop headers (Connection: X-Resp-Hop, X-Resp-Hop, Keep-Alive, ...)
    mode=cookies      answer with two Set-Cookie headers
    download=N        answer with N deterministic bytes (harness.pattern_chunks), streamed
    internal=1        add the header X-Upstream-Internal: secret

RawUpstream: a bare TCP server that hands each accepted connection to a function, for misbehaviour
(garbage, early closes, hangs, WebSocket).
"""

import hashlib
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from harness import LOCALHOST, HeaderLookup, pattern_chunks


class RecordedRequest(HeaderLookup):
    def __init__(self, method, target, headers, peer_port):
        self.method = method
        self.target = target
        self.path = urlsplit(target).path
        self.headers = headers  # [(name, value)] in wire order
        self.peer_port = peer_port
        self.body_len = 0
        self.body_sha256 = None
        self.complete = False  # the whole body arrived
        self.finished = False  # body reading is over (complete or cut)

    def __repr__(self):
        return f"<RecordedRequest {self.method} {self.target} complete={self.complete}>"


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo-upstream"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.server.owner._connected(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.owner._disconnected(self.connection)

    # every method is handled the same way
    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def do_HEAD(self):
        self._handle(head=True)

    def _read_counted(self, left, h, rec):
        """Reads `left` body bytes into the hash; False when the connection ended first."""
        while left:
            data = self.rfile.read(min(left, 256 * 1024))
            if not data:
                return False
            h.update(data)
            rec.body_len += len(data)
            left -= len(data)
        return True

    def _read_body(self, rec):
        h = hashlib.sha256()
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.lower() != "chunked":
                raise ValueError("unexpected transfer coding")
            while True:
                line = self.rfile.readline(1024)
                if not line.endswith(b"\r\n"):
                    return h  # connection ended mid-body
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = self.rfile.readline(8192)
                        if not t.endswith(b"\r\n"):
                            return h
                        if t == b"\r\n":
                            break
                    break
                if not self._read_counted(size, h, rec):
                    return h
                if self.rfile.read(2) != b"\r\n":
                    return h
        else:
            if not self._read_counted(int(self.headers.get("Content-Length") or 0), h, rec):
                return h
        rec.complete = True
        return h

    def _handle(self, head=False):
        owner = self.server.owner
        rec = RecordedRequest(self.command, self.path, list(self.headers.items()), self.client_address[1])
        owner._record(rec)
        try:
            digest = self._read_body(rec)
        except (OSError, ValueError):
            digest = None
        rec.body_sha256 = digest.hexdigest() if digest else None
        rec.finished = True
        owner._finished(rec)
        if not rec.complete:
            self.close_connection = True
            return
        q = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "delay_ms" in q:
            owner.stop_event.wait(int(q["delay_ms"]) / 1000.0)
        status = int(q.get("status", 200))
        extra = [("X-Upstream-Internal", "secret")] if q.get("internal") else []
        mode = q.get("mode", "")
        if mode == "hop":
            extra += [("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1"), ("Keep-Alive", "timeout=5"),
                      ("Proxy-Authenticate", "Basic"), ("X-Resp-Kept", "1")]
        elif mode == "cookies":
            extra += [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")]

        if "download" in q:
            total = int(q["download"])
            self.send_response(status)
            for n, v in extra:
                self.send_header(n, v)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            self.end_headers()
            if not head:
                for piece in pattern_chunks(total):
                    self.wfile.write(piece)
            return

        body = json.dumps({
            "method": self.command, "target": self.path, "path": rec.path, "headers": rec.headers,
            "body_len": rec.body_len, "body_sha256": rec.body_sha256, "peer_port": rec.peer_port,
        }).encode()
        self.send_response(status)
        for n, v in extra:
            self.send_header(n, v)
        if status in (204, 304):  # these never carry a body
            self.end_headers()
            return
        self.send_header("Content-Type", "application/json")
        if mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if not head:
                third = max(1, len(body) // 3)
                for piece in (body[:third], body[third:2 * third], body[2 * third:]):
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
        elif mode == "close":
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            if not head:
                for i in range(0, len(body), 100):
                    self.wfile.write(body[i:i + 100])
                    self.wfile.flush()
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # peers that vanish mid-exchange are part of the tests


class EchoUpstream:
    def __init__(self, host=LOCALHOST, tls=None):
        """tls: optional (cert_file, key_file) to serve HTTPS."""
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.requests = []  # RecordedRequest, in arrival order (head received)
        self.changed = threading.Condition(self.lock)  # notified when a request's body has been read
        self.connections_total = 0
        self._open = set()
        self.server = _Server((host, 0), _EchoHandler)
        self.server.owner = self
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self.port = self.server.server_address[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # --- bookkeeping called from handler threads ---
    def _connected(self, conn):
        with self.lock:
            self.connections_total += 1
            self._open.add(conn)

    def _disconnected(self, conn):
        with self.lock:
            self._open.discard(conn)

    def _record(self, rec):
        with self.lock:
            self.requests.append(rec)

    def _finished(self, rec):
        with self.lock:
            self.changed.notify_all()

    # --- for tests ---
    @property
    def hits(self):
        with self.lock:
            return len(self.requests)

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.connections_total = 0

    def wait_for_request(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for r in self.requests:
                    if predicate(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"upstream got no matching request within {timeout}s: {self.requests}")
                self.changed.wait(min(left, 0.05))

    def stop(self):
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self._open)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)


class RawUpstream:
    """Accepts connections and runs handler(conn, upstream) for each in its own thread."""

    def __init__(self, handler, host=LOCALHOST, port=0):
        self.handler = handler
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.connections_total = 0
        self.received = []  # free-form records that handlers append
        self._conns = []
        self._threads = []
        self.listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(512)  # bursts of a few hundred connections arrive at once
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self):
        while not self.stop_event.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with self.lock:
                self.connections_total += 1
                self._conns.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self.lock:
                self._threads.append(t)
            t.start()

    def _run(self, conn):
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def record(self, item):
        with self.lock:
            self.received.append(item)

    def stop(self):
        self.stop_event.set()
        self._accept_thread.join(5)
        self.listener.close()
        with self.lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)


def read_request_head(conn, buf):
    """Reads one request head from conn (buf: bytearray of bytes already read). Returns (method, target,
    headers dict with lower-case names) and leaves the rest in buf; None if the peer closed first."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    i = buf.index(b"\r\n\r\n")
    lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
    del buf[:i + 4]
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        n, _, v = line.partition(":")
        headers[n.strip().lower()] = v.strip()
    return method, target, headers


def read_exact(conn, buf, n):
    while len(buf) < n:
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    out = bytes(buf[:n])
    del buf[:n]
    return out
