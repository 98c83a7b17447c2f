"""A real redis-server for the integration tests, and a small RESP client (Python standard library only).

RedisServer runs /usr/bin/redis-server (nothing else runs it: the package does not start it here) on a free
loopback port, in the foreground, with no persistence and its files in a temp directory; it waits until the
server answers PING, and can be stopped and started again on the same port (an outage, then a recovery).

    redis = RedisServer.start()            # or RedisServer.start(args=["--requirepass", "secret"])
    self.addCleanup(redis.close)
    redis.call("SET", "k", "v")           # one command on the fixture's own connection
    redis.stop(); ...; redis.restart()   # same port; the data is gone (no persistence)

RedisClient speaks RESP2 over a plain socket: call(*args) sends one command and returns the reply, decoded as
str/int/list/None (bulk strings as bytes when decode=False); an error reply raises RedisError.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import LOCALHOST, free_port, terminate

REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


class RedisError(Exception):
    """An error reply (-ERR ...) from the server."""


class RedisClient:
    """One RESP2 connection. Not thread-safe: give each thread its own."""

    def __init__(self, port, host=LOCALHOST, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def encode(args):
        out = bytearray(b"*%d\r\n" % len(args))
        for a in args:
            if not isinstance(a, (bytes, bytearray)):
                a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        return bytes(out)

    def send(self, *args):
        """Sends one command without reading its reply (read it later with read_reply)."""
        self.sock.sendall(self.encode(args))

    def call(self, *args, decode=True):
        self.send(*args)
        return self.read_reply(decode)

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            self._fill()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def read_reply(self, decode=True):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode() if decode else rest
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return data.decode("utf-8", "replace") if decode else data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply(decode) for _ in range(n)]
        raise ConnectionError(f"unexpected RESP line {line!r}")


class RedisServer:
    """One redis-server process on a fixed loopback port (chosen free once, kept across restarts)."""

    def __init__(self, port=None, args=()):
        self.port = port or free_port()
        self.address = f"{LOCALHOST}:{self.port}"
        self.args = list(args)
        self.tmpdir = tempfile.mkdtemp(prefix="obsgw-redis-")
        self.logfile = os.path.join(self.tmpdir, "redis.log")
        self.proc = None
        self._client = None
        self.password = None
        for i, a in enumerate(self.args):
            if a == "--requirepass" and i + 1 < len(self.args):
                self.password = self.args[i + 1]

    @classmethod
    def start(cls, port=None, args=(), timeout=10.0):
        server = cls(port, args)
        try:
            server.start_process(timeout)
        except BaseException:
            server.close()
            raise
        return server

    def start_process(self, timeout=10.0):
        """Starts redis-server (again) on self.port and waits until it answers PING."""
        assert self.proc is None or self.proc.poll() is not None, "redis-server is already running"
        cmd = [REDIS_SERVER,
               "--port", str(self.port), "--bind", LOCALHOST,
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--dir", self.tmpdir, "--logfile", self.logfile,
               "--enable-debug-command", "local",  # Redis 7 refuses DEBUG (SLEEP) unless told otherwise
               *self.args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.wait_ready(timeout)

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with RedisClient(self.port, timeout=1.0) as c:
                    if self.password is not None:
                        c.call("AUTH", self.password)
                    if c.call("PING") == "PONG":
                        return
            except (OSError, ConnectionError, RedisError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise AssertionError(f"redis-server did not answer PING within {timeout}s ({last!r}): "
                                     f"{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines=20):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout=5.0):
        """A new connection of the caller's own (authenticated when the server requires a password)."""
        c = RedisClient(self.port, timeout=timeout)
        if self.password is not None:
            c.call("AUTH", self.password)
        return c

    def call(self, *args, decode=True):
        """One command on the fixture's connection (re-opened after a restart)."""
        for attempt in (0, 1):
            if self._client is None:
                self._client = self.client()
            try:
                return self._client.call(*args, decode=decode)
            except (OSError, ConnectionError):
                self._client.close()
                self._client = None
                if attempt:
                    raise

    def stop(self, timeout=5.0):
        """SIGTERM (redis-server closes its clients and exits), wait, SIGKILL if it does not go."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is not None:
            terminate(self.proc, timeout)

    def restart(self, timeout=10.0):
        self.stop()
        self.start_process(timeout)

    def close(self):
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
