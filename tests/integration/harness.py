"""Shared helpers for the gatewayd integration tests (Python standard library only).

- Gateway: runs gatewayd on a config dict written to a temp file, learns its ports from the JSON log on
  stdout, keeps every log line, and stops the process by its PID.
- HttpConnection / Response: a small raw-socket HTTP/1.1 client that shows exactly what went over the wire
  (interim responses, chunked framing, early closes), which the standard library clients hide.
- Small helpers: free ports, config building, deterministic payloads, /proc memory figures, openssl certs.
"""

import copy
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATEWAYD = os.environ.get("GATEWAYD") or os.path.join(REPO, "build", "apps", "gatewayd", "gatewayd")
# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print: a test fails when gatewayd did.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
LOCALHOST = "127.0.0.1"


# ---------------------------------------------------------------------------------------------------------
# ports, payloads, process figures


def free_port(host=LOCALHOST):
    """A TCP port that was free a moment ago (nothing listens on it afterwards)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_PATTERN = bytes((i * 7 + 13) % 256 for i in range(65536))


def pattern_chunks(total, piece=256 * 1024):
    """Yields `total` deterministic bytes in pieces of at most `piece` bytes."""
    block = _PATTERN * max(1, piece // len(_PATTERN))
    left = total
    while left > 0:
        n = min(left, len(block))
        yield block[:n]
        left -= n


def pattern_sha256(total):
    h = hashlib.sha256()
    for piece in pattern_chunks(total):
        h.update(piece)
    return h.hexdigest()


def proc_status_kb(pid, field):
    """A kB figure (VmRSS, VmHWM, ...) from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def concurrently(threads, per_thread, send, timeout=30.0):
    """Calls send(i) `per_thread` times in each of `threads` threads (i: the thread's index), all starting together;
    returns [(i, result)] in completion order. A thread's exception fails the caller, named."""
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    results, failures = [], []

    def worker(i):
        try:
            barrier.wait(10)
            for _ in range(per_thread):
                r = send(i)
                with lock:
                    results.append((i, r))
        except Exception as e:  # reported below: a thread's exception must fail the test
            failures.append(repr(e))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout)
    if failures or any(w.is_alive() for w in workers):
        raise AssertionError(f"client threads failed or hung: {failures}")
    return results


def wait_until(predicate, timeout=5.0, interval=0.02, message="condition"):
    """Polls predicate() until it is truthy (returns its value) or raises AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------
# configuration


def deep_merge(base, override):
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(upstreams, routes, server=None, logging=None):
    """A complete gatewayd config: ephemeral loopback ports, 2 threads, short drain; `server` merges in."""
    base_server = {
        "listen": [f"{LOCALHOST}:0"],
        "admin_listen": f"{LOCALHOST}:0",
        "threads": 2,
        "drain_timeout_ms": 3000,
    }
    return {
        "server": deep_merge(base_server, server),
        "logging": deep_merge({"level": "info", "access_log": True}, logging),
        "upstreams": upstreams,
        "routes": routes,
    }


def upstream_entry(url, **options):
    entry = {"url": url}
    entry.update(options)
    return entry


def route(name, upstream, path_prefix=None, path=None, host=None, methods=None, tag=True, **extra):
    """A route; with tag=True its responses carry `X-Route: <name>` (a headers policy) for assertions."""
    match = {}
    if path is not None:
        match["path"] = path
    if path_prefix is not None:
        match["path_prefix"] = path_prefix
    if host is not None:
        match["host"] = host
    if methods is not None:
        match["methods"] = methods
    r = {"name": name, "match": match, "upstream": upstream}
    policies = list(extra.pop("policies", []))
    if tag:
        policies.append({"type": "headers", "response": {"set": {"X-Route": name}}})
    if policies:
        r["policies"] = policies
    r.update(extra)
    return r


def rate_limit_spec(name, rate, per="hour", key="client_ip", **extra):
    """One entry of a rate_limit policy's "limits"; per=None leaves the period out (for per_ms or error tests)."""
    spec = {"name": name, "key": key, "rate": rate}
    if per is not None:
        spec["per"] = per
    spec.update(extra)
    return spec


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)  # atomic: a reload never sees half a file


# ---------------------------------------------------------------------------------------------------------
# gatewayd process


def terminate(proc, timeout):
    """SIGTERM to a process this test started (by its PID), wait, SIGKILL if it does not go. Safe to call twice."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass


class GatewayExited(AssertionError):
    pass


class Gateway:
    """One gatewayd process. Use Gateway.start(...) and stop() (tests register stop with addCleanup)."""

    def __init__(self, config, args=(), env=None, config_text=None, with_config_flag=True, wrapper=(), command=None):
        """env values may contain "{config}", replaced by the config file's path. `wrapper` is a command prefix
        (e.g. unshare) that ends by running its arguments. `command`, instead of gatewayd and its config, is a
        whole command line that ends by exec-ing gatewayd (a launcher script that writes its own config)."""
        self.tmpdir = tempfile.mkdtemp(prefix="obsgw-it-")
        self.config_path = os.path.join(self.tmpdir, "gatewayd.json")
        if config_text is not None:
            with open(self.config_path, "w") as f:
                f.write(config_text)
        elif config is not None:
            write_json(self.config_path, config)
        self.config = config
        self.lines = []  # parsed stdout lines (dicts); lines that are not JSON become {"raw": text}
        self.stderr_lines = []
        self._cond = threading.Condition()
        cmd = list(command) if command else (
            list(wrapper) + [GATEWAYD] + (["--config", self.config_path] if with_config_flag else []) + list(args))
        full_env = dict(os.environ)
        for k in [k for k in full_env if k.startswith("OBSGW_")]:
            del full_env[k]  # tests set the variables they mean; none leak in from the caller
        full_env.update({k: v.replace("{config}", self.config_path) for k, v in (env or {}).items()})
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        self.pid = self.proc.pid
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._readers:
            t.start()
        self.ports = []
        self.admin_port = None

    @classmethod
    def start(cls, config, args=(), env=None, timeout=10.0, **kw):
        gw = cls(config, args=args, env=env, **kw)
        try:
            gw.wait_started(timeout)
        except BaseException:
            gw.stop()
            raise
        return gw

    def _pump(self, stream, is_stdout):
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if is_stdout:
                    try:
                        obj = json.loads(text)
                        if not isinstance(obj, dict):
                            obj = {"raw": text}
                    except ValueError:
                        obj = {"raw": text}
                    self.lines.append(obj)
                else:
                    self.stderr_lines.append(text)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_started(self, timeout=10.0):
        self.wait_for_log(lambda l: l.get("msg") == "started", timeout)
        self.ports = [l["port"] for l in self.lines if l.get("msg") == "listening"]
        admin = [l["port"] for l in self.lines if l.get("msg") == "admin listening"]
        self.admin_port = admin[0] if admin else None

    @property
    def port(self):
        return self.ports[0]

    def wait_for_log(self, predicate, timeout=5.0, start=0):
        """Returns the first log line at index >= start for which predicate(line) holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if predicate(line):
                        return line
                if self.proc.poll() is not None and all(not t.is_alive() for t in self._readers):
                    raise GatewayExited(
                        f"gatewayd exited with {self.proc.returncode} before the expected log line; "
                        f"stderr: {self.stderr_text()!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching log line within {timeout}s; log: {self.lines[-10:]}")
                self._cond.wait(min(left, 0.1))

    def log_count(self):
        with self._cond:
            return len(self.lines)

    def access_log(self):
        with self._cond:
            return [l for l in self.lines if l.get("type") == "access"]

    def wait_access(self, predicate=lambda l: True, timeout=5.0):
        return self.wait_for_log(lambda l: l.get("type") == "access" and predicate(l), timeout)

    def stderr_text(self):
        with self._cond:
            return "\n".join(self.stderr_lines)

    # --- control ---

    def write_config(self, config):
        self.config = config
        write_json(self.config_path, config)

    def reload(self, config=None, text=None, timeout=5.0):
        """Rewrites the config file, sends SIGHUP and returns the log line that reports the outcome."""
        if text is not None:
            with open(self.config_path, "w") as f:
                f.write(text)
        elif config is not None:
            self.write_config(config)
        start = self.log_count()
        os.kill(self.pid, signal.SIGHUP)
        return self.wait_for_log(
            lambda l: l.get("msg") in ("configuration reloaded", "reload rejected; keeping the running configuration"),
            timeout, start)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=10.0):
        """SIGTERM, wait, SIGKILL if it does not go. Returns the exit code. Safe to call twice."""
        terminate(self.proc, timeout)
        for t in self._readers:
            t.join(2)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except OSError:
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        reports = [l for l in self.stderr_lines if any(m in l for m in SANITIZER_MARKERS)]
        if reports and not getattr(self, "_sanitizer_reported", False):
            self._sanitizer_reported = True
            raise AssertionError("gatewayd reported a sanitizer error:\n" + "\n".join(self.stderr_lines[-60:]))
        return self.proc.returncode

    # --- admin ---

    def admin_get(self, path, method="GET"):
        return request(self.admin_port, method, path)

    def stats(self):
        r = self.admin_get("/stats")
        assert r.status == 200, r
        return r.json()

    def metrics(self):
        r = self.admin_get("/metrics")
        assert r.status == 200, r
        return r.body.decode()

    def vm_kb(self, field):
        return proc_status_kb(self.pid, field)


def metric_value(text, series):
    """The value of one Prometheus series (name{labels} exactly as rendered) in /metrics text; 0 if absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def run_gatewayd(args, timeout=10.0):
    """Runs gatewayd to completion (for --check and the like) without inherited OBSGW_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSGW_")}
    return subprocess.run([GATEWAYD, *args], capture_output=True, timeout=timeout, env=env)


def run_check(config=None, text=None, args=(), timeout=10.0):
    """Runs `gatewayd --check` on a config; returns (exit code, stdout, stderr, config path)."""
    tmpdir = tempfile.mkdtemp(prefix="obsgw-check-")
    try:
        path = os.path.join(tmpdir, "check.json")
        if text is None:
            text = json.dumps(config)
        with open(path, "w") as f:
            f.write(text)
        p = run_gatewayd(["--config", path, "--check", *args], timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode(), path
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# raw HTTP/1.1 client


class ConnectionClosed(Exception):
    """The peer closed (or reset) the connection before sending any byte of a response."""


class IncompleteResponse(Exception):
    """The connection ended in the middle of a response."""

    def __init__(self, message, partial=b""):
        super().__init__(message)
        self.partial = partial


class HeaderLookup:
    """Case-insensitive access to `self.headers`, a list of (name, value) pairs in wire order."""

    def header(self, name, default=None):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


class Response(HeaderLookup):
    def __init__(self, version, status, reason, headers, body, interim=()):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in wire order
        self.body = body
        self.interim = list(interim)  # 1xx responses that came first: [(status, headers)]
        self.chunked = False

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers!r} body={self.body[:300]!r}>"


class HttpConnection:
    """One client connection; requests and responses are read and written explicitly."""

    def __init__(self, port, host=LOCALHOST, timeout=10.0, sock=None):
        self.port = port
        self.host = host
        if sock is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect((host, port))
            except BaseException:
                sock.close()
                raise
        else:
            sock.settimeout(timeout)
        self.sock = sock
        self.buf = bytearray()  # received, not yet consumed
        self.responses = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=None, body=None, host_header=None, version="HTTP/1.1"):
        """Sends one request. `headers` is a list of pairs or a dict; Host and Content-Length are added
        unless given (body may be bytes or None)."""
        self.send(build_request(method, target, headers, body,
                                host_header or f"{self.host}:{self.port}", version))

    # --- reading ---

    def fill(self):
        """Reads what has arrived (blocking up to the timeout) into buf; False when the peer closed or reset."""
        try:
            data = self.sock.recv(256 * 1024)
        except (ConnectionResetError, ConnectionAbortedError):
            data = None
        if data:
            self.buf += data
            return True
        return False

    def _read_until(self, marker, limit=1 << 20, started=True):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise IncompleteResponse("response head too large", bytes(self.buf))
            if not self.fill():
                if not self.buf and not started:
                    raise ConnectionClosed("closed before any response byte")
                raise IncompleteResponse("closed in the middle of a response", bytes(self.buf))

    def _read_exact(self, n, sink):
        while n > 0:
            if not self.buf and not self.fill():
                raise IncompleteResponse(f"closed with {n} body bytes missing")
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take

    def read_head(self):
        """Reads one response head: (version, status, reason, headers)."""
        raw = self._read_until(b"\r\n\r\n", started=bool(self.buf))
        lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise IncompleteResponse(f"bad status line {lines[0]!r}", raw)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))
        return version, status, reason, headers

    def read_response(self, method="GET", sink=None):
        """Reads the next final response (1xx other than 101 are collected in .interim). With `sink`, the body
        is passed to sink(bytes) piece by piece instead of being kept."""
        interim = []
        while True:
            try:
                version, status, reason, headers = self.read_head()
            except ConnectionClosed:
                if interim:
                    raise IncompleteResponse("closed after an interim response")
                raise
            if 100 <= status < 200 and status != 101:
                interim.append((status, headers))
                continue
            break
        resp = Response(version, status, reason, headers, b"", interim)
        parts = []
        out = sink or parts.append
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if method == "HEAD" or status in (101, 204, 304) or status < 200:
            pass
        elif te is not None:
            if te.lower() != "chunked":
                raise IncompleteResponse(f"unexpected transfer coding {te!r}")
            resp.chunked = True
            self._read_chunked(out)
        elif cl is not None:
            self._read_exact(int(cl), out)
        else:
            while True:  # delimited by close
                if self.buf:
                    out(bytes(self.buf))
                    self.buf.clear()
                if not self.fill():
                    break
        resp.body = b"".join(parts)
        self.responses += 1
        return resp

    def _read_chunked(self, out):
        while True:
            line = self._read_until(b"\r\n")
            size = int(line[:-2].split(b";")[0], 16)
            if size == 0:
                while self._read_until(b"\r\n") != b"\r\n":
                    pass  # trailers
                return
            self._read_exact(size, out)
            if self._read_until(b"\r\n") != b"\r\n":
                raise IncompleteResponse("chunk not followed by CRLF")

    def wait_closed(self, timeout=3.0):
        """True when the peer closes the connection within `timeout` (bytes arriving first are kept in buf)."""
        deadline = time.monotonic() + timeout
        old = self.sock.gettimeout()
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    if not self.fill():
                        return True
                except socket.timeout:
                    return False
        finally:
            self.sock.settimeout(old)


def build_request(method, target, headers=None, body=None, host_header="localhost", version="HTTP/1.1"):
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {n.lower() for n, _ in items}
    if "host" not in names and host_header is not None:
        items.insert(0, ("Host", host_header))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in items) + "\r\n"
    return head.encode("latin-1") + (body or b"")


def request(port, method="GET", target="/", headers=None, body=None, host=LOCALHOST, timeout=10.0, **kw):
    """One request on a fresh connection; returns the Response."""
    with HttpConnection(port, host=host, timeout=timeout) as c:
        c.request(method, target, headers, body, **kw)
        return c.read_response(method)


def chunk_encode(pieces, extension=b""):
    out = bytearray()
    for p in pieces:
        out += b"%x%s\r\n%s\r\n" % (len(p), extension, p)
    out += b"0\r\n\r\n"
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------
# certificates (openssl CLI)


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca_and_leaf(directory, names=("localhost",), ips=(LOCALHOST,)):
    """Creates ca.pem/ca.key and a leaf cert.pem/key.pem signed by that CA (EC P-256) in `directory`."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=obsgw integration test CA", cwd=directory)
    _openssl("req", *ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", f"/CN={names[0]}", cwd=directory)
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{i}" for i in ips])
    with open(os.path.join(directory, "ext.cnf"), "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf", cwd=directory)
    return {k: os.path.join(directory, v) for k, v in
            {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}.items()}


def class_certs(test_class, prefix="obsgw-tls-"):
    """make_ca_and_leaf() in a temporary directory that goes when `test_class`'s tests are done (setUpClass)."""
    directory = tempfile.mkdtemp(prefix=prefix)
    test_class.addClassCleanup(shutil.rmtree, directory, True)
    return make_ca_and_leaf(directory)
