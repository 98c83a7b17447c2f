"""gatewayd as a process: configuration checking, environment overrides, SIGHUP reload, SIGTERM drain,
connection limits, TLS (listener and upstream), IPv6 and the admin endpoints."""

import signal
import socket
import ssl
import threading
import time
import unittest
import warnings

from harness import (ConnectionClosed, Gateway, HttpConnection, IncompleteResponse, class_certs, free_port,
                     make_config, metric_value, request, route, run_check, run_gatewayd, upstream_entry, wait_until)
from upstream import EchoUpstream


def minimal_config(**server):
    return make_config({"u": upstream_entry("http://127.0.0.1:9")}, [route("r", "u", path_prefix="/")],
                       server=server)


class CheckTest(unittest.TestCase):
    """`gatewayd --check` validates a config and names each problem by its path."""

    def assert_invalid(self, config=None, text=None, expected=(), args=()):
        rc, out, err, path = run_check(config, text, args)
        self.assertEqual(rc, 2, (out, err))
        self.assertTrue(err.startswith("gatewayd: invalid configuration:\n"), err)
        problems = err.splitlines()[1:]
        for e in expected:
            self.assertIn(e.format(path=path), problems)
        return problems, path

    def test_valid_config(self):
        """A valid config exits 0 and says so, with its route and upstream counts."""
        rc, out, err, path = run_check(minimal_config())
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip(), f"gatewayd: configuration {path} is valid (1 routes, 1 upstreams)")

    def test_unknown_key(self):
        """An unknown key is named with its path, followed by the keys that are allowed there."""
        cfg = minimal_config(bogus=1)
        cfg["upstreams"]["u"]["retry_count"] = 3
        problems, path = self.assert_invalid(cfg)
        expected = {
            "server.bogus": {"listen", "tls", "admin_listen", "threads", "max_connections", "drain_timeout_ms",
                             "limits", "timeouts"},
            "upstreams.u.retry_count": {"url", "endpoints", "balance", "health_check", "outlier", "retries",
                                        "max_pending", "tls", "connect_timeout_ms", "read_timeout_ms",
                                        "total_timeout_ms", "tunnel_idle_timeout_ms", "max_idle_connections",
                                        "idle_timeout_ms", "preserve_host", "expose_errors"},
        }
        for key_path, known in expected.items():
            prefix = f"{path}: {key_path}: unknown key (known keys: "
            lines = [p for p in problems if p.startswith(prefix) and p.endswith(")")]
            self.assertEqual(len(lines), 1, problems)
            listed = set(lines[0][len(prefix):-1].split(", "))
            self.assertLessEqual(known, listed)  # keys added later may be listed too
            self.assertNotIn(key_path.rsplit(".", 1)[1], listed)

    def test_unknown_upstream(self):
        """A route naming an upstream that does not exist is an error at routes[i].upstream."""
        cfg = minimal_config()
        cfg["routes"].append(route("r2", "lokii", path_prefix="/x"))
        self.assert_invalid(cfg, expected=['{path}: routes[1].upstream: unknown upstream "lokii"'])

    def test_wrong_types(self):
        """Values of the wrong type are named with the expected and the actual type."""
        cfg = minimal_config(threads="two")
        cfg["upstreams"]["u"]["preserve_host"] = "yes"
        cfg["routes"][0]["match"]["methods"] = "GET"
        cfg["server"]["timeouts"] = {"idle_ms": 1.5}
        self.assert_invalid(cfg, expected=[
            "{path}: server.threads: expected an integer, got a string",
            "{path}: upstreams.u.preserve_host: expected true or false, got a string",
            "{path}: routes[0].match.methods: expected an array of strings, got a string",
            "{path}: server.timeouts.idle_ms: expected an integer, got a fraction"])

    def test_bad_listen_addresses(self):
        """Listen addresses that are not host:port (including unbracketed IPv6) are rejected with their index."""
        cfg = minimal_config(listen=["127.0.0.1:0", "nonsense", "::1:80", "127.0.0.1:70000"])
        self.assert_invalid(cfg, expected=[
            '{path}: server.listen[1]: "nonsense" is not host:port (IPv6 as [addr]:port)',
            '{path}: server.listen[2]: "::1:80" is not host:port (IPv6 as [addr]:port)',
            '{path}: server.listen[3]: "127.0.0.1:70000" is not host:port (IPv6 as [addr]:port)'])

    def test_out_of_range_and_semantic_errors(self):
        """Ranges, policies and route rules are checked: every problem is listed, not just the first."""
        cfg = minimal_config(max_connections=0)
        cfg["upstreams"]["u"]["url"] = "ftp://x"
        cfg["routes"].append({"name": "r", "match": {"path": "x"}, "upstream": "u", "rewrite_prefix": "/y"})
        problems, _ = self.assert_invalid(cfg, expected=[
            "{path}: server.max_connections: must be between 1 and 10000000, got 0",
            '{path}: upstreams.u.url: "ftp://x" must start with http:// or https://',
            "{path}: routes[1].match.path: must start with '/'",
            "{path}: routes[1].rewrite_prefix: only valid with match.path_prefix",
            '{path}: routes[1].name: route "r" is defined twice'])
        self.assertGreaterEqual(len(problems), 5)

    def test_not_json_and_missing_file(self):
        """Broken JSON and a missing file exit 2 with the file named."""
        problems, path = self.assert_invalid(text='{"server": ')
        self.assertEqual(len(problems), 1)
        self.assertTrue(problems[0].startswith(f"{path}: ") and "not valid JSON" in problems[0], problems)
        p = run_gatewayd(["--config", "/nonexistent/obsgw.json", "--check"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/obsgw.json: cannot open the config file", p.stderr.decode())

    def test_bad_listen_flag(self):
        """A malformed --listen flag is reported like a config problem."""
        self.assert_invalid(minimal_config(), args=["--listen", "bogus"],
                            expected=['--listen: "bogus" is not host:port'])


class EnvOverrideTest(unittest.TestCase):
    """OBSGW_* environment variables stand in for the command-line flags."""

    def setUp(self):
        self.up = EchoUpstream()
        self.addCleanup(self.up.stop)
        self.cfg_port = free_port()
        self.cfg = make_config({"u": upstream_entry(self.up.url)}, [route("r", "u", path_prefix="/")],
                               server={"listen": [f"127.0.0.1:{self.cfg_port}"]})

    def start(self, env, args=(), with_config_flag=True, wait=True):
        gw = Gateway(self.cfg, args=args, env=env, with_config_flag=with_config_flag)
        self.addCleanup(gw.stop)
        if wait:
            gw.wait_started()
        return gw

    def test_config_listen_admin_and_threads_from_env(self):
        """OBSGW_CONFIG, OBSGW_LISTEN (two addresses), OBSGW_ADMIN_LISTEN and OBSGW_THREADS replace the file's
        values and the missing --config flag."""
        p1, p2, admin = free_port(), free_port(), free_port()
        gw = self.start({"OBSGW_CONFIG": "{config}", "OBSGW_LISTEN": f"127.0.0.1:{p1},127.0.0.1:{p2}",
                         "OBSGW_ADMIN_LISTEN": f"127.0.0.1:{admin}", "OBSGW_THREADS": "3"}, with_config_flag=False)
        self.assertEqual(sorted(gw.ports), sorted([p1, p2]))
        self.assertEqual(gw.admin_port, admin)
        self.assertEqual(gw.wait_for_log(lambda l: l.get("msg") == "started")["threads"], 3)
        for p in (p1, p2):
            self.assertEqual(request(p, "GET", "/x").status, 200)
        self.assertEqual(gw.admin_get("/health").status, 200)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.cfg_port), timeout=2).close()

    def test_the_allocator_it_names_is_the_one_it_runs(self):
        """The start line names gatewayd's allocator (tcmalloc, or glibc's in sanitizer builds), and that is the
        one in the process: a build that names one and runs the other would make every figure measured of it
        misleading."""
        gw = self.start({})
        allocator = gw.wait_for_log(lambda l: l.get("msg") == "started")["malloc"]
        self.assertIn(allocator, ("tcmalloc", "system"))
        with open(f"/proc/{gw.pid}/maps") as f:
            mapped = f.read()
        self.assertEqual("libtcmalloc_minimal" in mapped, allocator == "tcmalloc", allocator)
        self.assertEqual(request(self.cfg_port, "GET", "/x").status, 200)

    def test_flag_beats_env(self):
        """A command-line flag wins over its environment variable."""
        gw = self.start({"OBSGW_THREADS": "3"}, args=["--threads", "1"])
        self.assertEqual(gw.wait_for_log(lambda l: l.get("msg") == "started")["threads"], 1)

    def test_log_level_from_env(self):
        """OBSGW_LOG_LEVEL=warn silences info lines while errors are still logged."""
        gw = self.start({"OBSGW_LOG_LEVEL": "warn"}, wait=False)
        wait_until(lambda: self._serves(self.cfg_port), 10, message="gatewayd to serve")
        start = gw.log_count()
        gw.reload(text="{")
        self.assertTrue(any(l.get("level") == "error" for l in gw.lines[start:]))
        self.assertEqual([l for l in gw.lines if l.get("level") == "info"], [])

    @staticmethod
    def _serves(port):
        try:
            return request(port, "GET", "/x", timeout=1).status == 200
        except OSError:
            return False


class ReloadTest(unittest.TestCase):
    """SIGHUP reloads the config file; a bad file is rejected and the running config keeps serving."""

    def setUp(self):
        self.a = EchoUpstream()
        self.addCleanup(self.a.stop)
        self.b = EchoUpstream()
        self.addCleanup(self.b.stop)
        self.old = make_config({"a": upstream_entry(self.a.url)}, [route("old", "a", path_prefix="/old")])
        self.gw = Gateway.start(self.old)
        self.addCleanup(self.gw.stop)

    def test_sighup_switches_routes_and_in_flight_request_finishes(self):
        """After SIGHUP the new route serves and the removed one is 404, while a request in flight on the old
        route completes with the old route's behaviour."""
        result = {}
        slow = threading.Thread(target=lambda: result.update(r=request(self.gw.port, "GET", "/old/slow?delay_ms=800")))
        slow.start()
        self.addCleanup(slow.join, 5)
        self.a.wait_for_request(lambda r: r.path == "/old/slow")

        new = make_config({"a": upstream_entry(self.a.url), "b": upstream_entry(self.b.url)},
                          [route("new", "b", path_prefix="/new")])
        line = self.gw.reload(new)
        self.assertEqual(line["msg"], "configuration reloaded", line)
        r = request(self.gw.port, "GET", "/new/x")
        self.assertEqual((r.status, r.header("X-Route")), (200, "new"))
        self.assertEqual([x.path for x in self.b.snapshot()], ["/new/x"])
        self.assertEqual(request(self.gw.port, "GET", "/old/x").status, 404)

        slow.join(5)
        self.assertEqual(result["r"].status, 200, result)
        self.assertEqual(result["r"].header("X-Route"), "old")
        self.assertEqual(self.gw.stats()["config_reloads"], {"success": 1, "failure": 0})

    def test_invalid_reload_keeps_running_config(self):
        """Broken JSON or an invalid config on SIGHUP is rejected (logged with its problems, counted as failure)
        and the old routes keep serving."""
        line = self.gw.reload(text='{"server": ')
        self.assertEqual(line["msg"], "reload rejected; keeping the running configuration")
        self.assertIn("not valid JSON", line["problems"])
        bad = make_config({"a": upstream_entry(self.a.url)}, [route("old", "nope", path_prefix="/old")])
        line = self.gw.reload(bad)
        self.assertEqual(line["msg"], "reload rejected; keeping the running configuration")
        self.assertIn('routes[0].upstream: unknown upstream "nope"', line["problems"])
        r = request(self.gw.port, "GET", "/old/still")
        self.assertEqual((r.status, r.header("X-Route")), (200, "old"))
        self.assertIsNone(self.gw.proc.poll())
        self.assertEqual(self.gw.stats()["config_reloads"], {"success": 0, "failure": 2})
        self.assertEqual(metric_value(self.gw.metrics(), 'obsgw_config_reloads_total{result="failure"}'), 2)


class DrainTest(unittest.TestCase):
    """SIGTERM: stop accepting, finish what is in flight, exit 0."""

    WORKERS = 4
    DRAIN_MS = 5000

    def test_sigterm_under_load_loses_no_response(self):
        """4 keep-alive clients load a slow (50 ms) upstream; SIGTERM comes mid-run. Every request the upstream
        executed got its complete 200 back; every other request was refused or closed before any byte (safe to
        retry, and verified never executed); nothing was truncated; an 800 ms request in flight at SIGTERM
        completed (with Connection: close); the process exits 0 well before the drain deadline."""
        up = EchoUpstream()
        self.addCleanup(up.stop)
        gw = Gateway.start(make_config({"u": upstream_entry(up.url)}, [route("r", "u", path_prefix="/")],
                                       server={"drain_timeout_ms": self.DRAIN_MS}))
        self.addCleanup(gw.stop)
        port = gw.port
        lock = threading.Lock()
        outcomes = []  # (kind, request id, monotonic time, detail)
        stop_at = time.monotonic() + 5.0

        def note(kind, rid, detail=None):
            with lock:
                outcomes.append((kind, rid, time.monotonic(), detail))

        def worker(n):
            conn = None
            for i in range(400):
                if time.monotonic() > stop_at:
                    break
                rid = f"w{n}-{i}"
                if conn is None:
                    try:
                        conn = HttpConnection(port, timeout=5)
                    except ConnectionRefusedError:
                        note("refused", rid)
                        break
                try:
                    conn.request("GET", f"/{rid}?delay_ms=50", [("X-Request-Id", rid)])
                except OSError:  # e.g. reset by a listener that closed with us in its backlog
                    note("closed_before_response", rid)
                    conn.close()
                    conn = None
                    continue
                try:
                    r = conn.read_response()
                except ConnectionClosed:
                    note("closed_before_response", rid)
                    conn.close()
                    conn = None
                    continue
                except (IncompleteResponse, OSError) as e:
                    note("broken", rid, repr(e))
                    conn.close()
                    conn = None
                    continue
                if r.status == 200 and r.json()["path"] == f"/{rid}":
                    note("ok", rid)
                elif r.status == 503:
                    note("refused_503", rid)
                    break
                else:
                    note("bad", rid, r)
                if r.header("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            if conn:
                conn.close()

        def long_request():
            # a request certainly in flight at SIGTERM, whatever the workers' timing
            with HttpConnection(port, timeout=10) as c:
                c.request("GET", "/inflight?delay_ms=800")
                r = c.read_response()
                note("inflight", "inflight", (r.status, r.header("Connection"), r.json()["path"]))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(self.WORKERS)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        threads.append(threading.Thread(target=long_request))
        threads[-1].start()
        up.wait_for_request(lambda r: r.path == "/inflight")
        sigterm_at = time.monotonic()
        gw.signal(signal.SIGTERM)
        rc = gw.proc.wait(self.DRAIN_MS / 1000 + 5)
        exited_after = time.monotonic() - sigterm_at
        for t in threads:
            t.join(10)

        kinds = {}
        for kind, *_ in outcomes:
            kinds[kind] = kinds.get(kind, 0) + 1
        self.assertEqual([o for o in outcomes if o[0] in ("broken", "bad")], [], kinds)
        self.assertGreater(kinds.get("ok", 0), self.WORKERS * 2, kinds)
        inflight = [(t, detail) for kind, _, t, detail in outcomes if kind == "inflight"]
        self.assertEqual(len(inflight), 1, "the request in flight at SIGTERM got no response")
        self.assertGreater(inflight[0][0], sigterm_at)
        self.assertEqual(inflight[0][1], (200, "close", "/inflight"))
        answered = {rid for kind, rid, _, _ in outcomes if kind in ("ok", "inflight")}
        executed = {r.path.lstrip("/") for r in up.snapshot()}
        self.assertEqual(executed - answered, set(), "executed upstream but the client got no complete response")
        self.assertEqual(rc, 0)
        self.assertLess(exited_after, self.DRAIN_MS / 1000)
        gw.wait_for_log(lambda l: l.get("msg") == "stopped", 2)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_drain_deadline_cuts_long_requests(self):
        """A request that outlives drain_timeout_ms does not hold the process: it exits 0 soon after the deadline."""
        up = EchoUpstream()
        self.addCleanup(up.stop)
        gw = Gateway.start(make_config({"u": upstream_entry(up.url)}, [route("r", "u", path_prefix="/")],
                                       server={"drain_timeout_ms": 500}))
        self.addCleanup(gw.stop)
        c = HttpConnection(gw.port, timeout=10)
        self.addCleanup(c.close)
        c.request("GET", "/hang?delay_ms=8000")
        up.wait_for_request(lambda r: r.path == "/hang")
        start = time.monotonic()
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.proc.wait(5), 0)
        self.assertLess(time.monotonic() - start, 3.0)


class MaxConnectionsTest(unittest.TestCase):
    def test_connections_beyond_the_limit_get_503(self):
        """With max_connections=2, a third connection gets 503 too_many_connections (JSON, Retry-After) and is
        closed; it is counted; once a connection closes, new ones are served again."""
        up = EchoUpstream()
        self.addCleanup(up.stop)
        gw = Gateway.start(make_config({"u": upstream_entry(up.url)}, [route("r", "u", path_prefix="/")],
                                       server={"max_connections": 2}))
        self.addCleanup(gw.stop)
        held = []
        for i in range(2):
            c = HttpConnection(gw.port)
            self.addCleanup(c.close)
            c.request("GET", f"/hold/{i}")
            self.assertEqual(c.read_response().status, 200)
            held.append(c)
        with HttpConnection(gw.port, timeout=5) as third:
            r = third.read_response()  # the refusal comes without a request
            self.assertTrue(third.wait_closed(3))
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        self.assertEqual(r.json()["error"], "too_many_connections")
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertEqual(gw.stats()["refused_connections"], 1)
        held[0].close()

        def served():
            try:
                return request(gw.port, "GET", "/again", timeout=2).status == 200
            except (OSError, ConnectionClosed, IncompleteResponse):
                return False
        wait_until(served, 5, message="a freed connection slot")

    def test_open_file_limit_is_checked_against_two_descriptors_per_connection(self):
        """Under a hard limit of 256 open files (prlimit), max_connections 1000 needs 2 x 1000 + 64 descriptors (a
        client connection may hold an upstream one): gatewayd warns at start, naming both figures; with
        max_connections 90 (244 needed) it does not."""
        wrapper = ["prlimit", "--nofile=256:256"]
        warned = lambda l: l.get("msg") == "open file limit below what max_connections needs"
        gw = Gateway.start(minimal_config(max_connections=1000), wrapper=wrapper)
        self.addCleanup(gw.stop)
        line = gw.wait_for_log(warned, 5)
        self.assertEqual((line.get("open_files"), line.get("needed"), line.get("max_connections")), (256, 2064, 1000))
        quiet = Gateway.start(minimal_config(max_connections=90), wrapper=wrapper)
        self.addCleanup(quiet.stop)
        self.assertIn("uptime_seconds", quiet.stats())  # started and answering
        with quiet._cond:
            self.assertEqual([l for l in quiet.lines if warned(l)], [])


class TlsTest(unittest.TestCase):
    """TLS listener (TLS 1.2+ only) and HTTPS upstreams verified against a CA."""

    @classmethod
    def setUpClass(cls):
        cls.certs = class_certs(cls)
        cls.plain_up = EchoUpstream()
        cls.addClassCleanup(cls.plain_up.stop)
        cls.tls_up = EchoUpstream(tls=(cls.certs["cert"], cls.certs["key"]))
        cls.addClassCleanup(cls.tls_up.stop)
        ca = cls.certs["ca"]
        upstreams = {
            "plain": upstream_entry(cls.plain_up.url),
            "trusted": upstream_entry(cls.tls_up.url, tls={"ca_file": ca}),
            "by_name": upstream_entry(cls.tls_up.url, tls={"ca_file": ca, "server_name": "localhost"}),
            "untrusted": upstream_entry(cls.tls_up.url),
            "wrong_name": upstream_entry(cls.tls_up.url, tls={"ca_file": ca, "server_name": "wrong.example"}),
            "no_verify": upstream_entry(cls.tls_up.url, tls={"verify": False}),
        }
        routes = [route(n, n, path_prefix="/" + n) for n in upstreams]
        cfg = make_config(upstreams, routes, server={
            "tls": [{"listen": "127.0.0.1:0", "cert_file": cls.certs["cert"], "key_file": cls.certs["key"]}],
            "timeouts": {"tls_handshake_ms": 500}})
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.plain_port, cls.tls_port = cls.gw.ports  # plain listeners are logged first

    def client_context(self, version=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.certs["ca"])
        if version is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                ctx.minimum_version = ctx.maximum_version = version
        return ctx

    def tls_connect(self, ctx):
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=5)
        try:
            return ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise

    def test_tls12_and_tls13_serve_requests(self):
        """TLS 1.2 and 1.3 clients are served, and the upstream sees X-Forwarded-Proto: https."""
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version):
                s = self.tls_connect(self.client_context(version))
                with HttpConnection(self.tls_port, sock=s) as c:
                    self.assertEqual(s.version(), version.name.replace("_", "."))
                    c.request("GET", "/plain/tls")
                    r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.plain_up.snapshot()[-1].header("X-Forwarded-Proto"), "https")

    def test_old_tls_versions_refused(self):
        """TLS 1.0 and 1.1 handshakes are refused by the server (protocol_version alert)."""
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=version):
                with self.assertRaisesRegex(ssl.SSLError, "PROTOCOL_VERSION|protocol version"):
                    self.tls_connect(self.client_context(version)).close()

    def test_alpn_selects_http11(self):
        """A client offering h2 and http/1.1 gets http/1.1."""
        ctx = self.client_context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        s = self.tls_connect(ctx)
        try:
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        finally:
            s.close()

    def test_plaintext_on_tls_port_and_stalled_handshake_are_dropped(self):
        """Plain HTTP sent to the TLS port, or a connection that never starts its handshake, is closed
        (the latter after tls_handshake_ms), and the listener keeps working."""
        with HttpConnection(self.tls_port, timeout=5) as c:
            c.request("GET", "/plain/x")
            self.assertTrue(c.wait_closed(3))
            self.assertNotIn(b"HTTP/1.1 200", bytes(c.buf))
        with HttpConnection(self.tls_port, timeout=5) as c:
            start = time.monotonic()
            self.assertTrue(c.wait_closed(3), "stalled handshake not timed out")
            self.assertGreaterEqual(time.monotonic() - start, 0.3)
        s = self.tls_connect(self.client_context())
        with HttpConnection(self.tls_port, sock=s) as c:
            c.request("GET", "/plain/after")
            self.assertEqual(c.read_response().status, 200)

    def test_https_upstream_verified_with_ca_file(self):
        """An HTTPS upstream whose certificate chains to tls.ca_file is used (by IP or by server_name)."""
        for prefix in ("/trusted", "/by_name"):
            with self.subTest(prefix=prefix):
                r = request(self.plain_port, "GET", prefix + "/x")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], prefix + "/x")

    def test_https_upstream_untrusted_or_wrong_name_is_502(self):
        """Without the CA (system store) or with a name the certificate does not carry: 502 upstream_tls_error."""
        for prefix in ("/untrusted", "/wrong_name"):
            with self.subTest(prefix=prefix):
                before = self.tls_up.hits
                r = request(self.plain_port, "GET", prefix + "/x")
                self.assertEqual(r.status, 502, r)
                self.assertEqual(r.json()["error"], "upstream_tls_error")
                self.assertEqual(self.tls_up.hits, before)

    def test_https_upstream_without_verification(self):
        """tls.verify=false accepts the upstream's certificate without checking it."""
        r = request(self.plain_port, "GET", "/no_verify/x")
        self.assertEqual(r.status, 200, r)


class Ipv6Test(unittest.TestCase):
    def test_ipv6_loopback_listener(self):
        """A [::1] listener serves, and the upstream sees the IPv6 client address in X-Forwarded-For."""
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        up = EchoUpstream()
        self.addCleanup(up.stop)
        gw = Gateway.start(make_config({"u": upstream_entry(up.url)}, [route("r", "u", path_prefix="/")],
                                       server={"listen": ["[::1]:0"]}))
        self.addCleanup(gw.stop)
        r = request(gw.port, "GET", "/v6", host="::1", host_header=f"[::1]:{gw.port}")
        self.assertEqual(r.status, 200, r)
        rec = up.snapshot()[0]
        self.assertEqual(rec.header("X-Forwarded-For"), "::1")
        self.assertEqual(rec.header("X-Forwarded-Host"), f"[::1]:{gw.port}")


class AdminTest(unittest.TestCase):
    """/health, /ready, /stats and /metrics on the admin listener."""

    def setUp(self):
        self.up = EchoUpstream()
        self.addCleanup(self.up.stop)
        self.cfg = make_config({"u": upstream_entry(self.up.url)}, [route("r", "u", path_prefix="/r")])
        self.gw = Gateway.start(self.cfg)
        self.addCleanup(self.gw.stop)

    def test_health(self):
        """/health is 200 {"status":"ok"} as JSON; HEAD works too."""
        r = self.gw.admin_get("/health")
        self.assertEqual((r.status, r.json()), (200, {"status": "ok"}))
        self.assertEqual(r.header("Content-Type"), "application/json")
        r = self.gw.admin_get("/health", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_ready_reports_each_upstream(self):
        """/ready is 200 when every upstream accepts TCP, and 503 naming the unreachable one otherwise."""
        r = self.gw.admin_get("/ready")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ready", "upstreams": {"u": "reachable"}})
        cfg = make_config({"u": upstream_entry(self.up.url), "d": upstream_entry(f"http://127.0.0.1:{free_port()}")},
                          [route("r", "u", path_prefix="/r"), route("d", "d", path_prefix="/d")])
        self.assertEqual(self.gw.reload(cfg)["msg"], "configuration reloaded")
        r = self.gw.admin_get("/ready")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json(), {"status": "not_ready", "upstreams": {"u": "reachable", "d": "unreachable"}})

    def test_stats_counts_requests(self):
        """/stats counts forwarded requests per route and status, rejections by reason and parse errors."""
        sizes = 0
        for i in range(3):
            r = request(self.gw.port, "GET", f"/r/{i}")
            self.assertEqual(r.status, 200)
            sizes += len(r.body)
        self.assertEqual(request(self.gw.port, "GET", "/nowhere").status, 404)
        with HttpConnection(self.gw.port) as c:
            c.send(b"GET / HTTP/1.1\nHost: x\n\n")
            self.assertEqual(c.read_response().status, 400)
        def all_counted():
            s = self.gw.stats()
            return s if s["total_requests"] >= 5 else None
        stats = wait_until(all_counted, 3, message="5 requests counted")
        self.assertEqual(stats["total_requests"], 5)
        self.assertEqual(stats["forwarded"], 3)
        self.assertEqual(stats["rejected"], 2)
        self.assertEqual(stats["rejected_by_reason"], {"no_route": 1, "bare_lf": 1})
        self.assertEqual(stats["parse_errors"], 1)
        self.assertEqual(stats["refused_connections"], 0)
        self.assertGreaterEqual(stats["active_connections"], 1)
        self.assertEqual(stats["routes"]["r"], {"requests": 3, "forwarded": 3, "bytes_in": 0, "bytes_out": sizes,
                                                "status": {"200": 3}})
        self.assertGreaterEqual(stats["uptime_seconds"], 0)

    def test_metrics_prometheus_text(self):
        """/metrics is Prometheus text with per-route request counters and a cumulative latency histogram."""
        for i in range(2):
            self.assertEqual(request(self.gw.port, "GET", f"/r/{i}").status, 200)
        wait_until(lambda: metric_value(self.gw.metrics(), 'obsgw_requests_total{route="r",code="200"}') == 2, 3,
                   message="2 requests in /metrics")
        r = self.gw.admin_get("/metrics")
        self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"), r)
        text = r.body.decode()
        self.assertIn("# TYPE obsgw_requests_total counter", text)
        self.assertIn("# TYPE obsgw_request_duration_seconds histogram", text)
        self.assertIn("# TYPE obsgw_upstream_errors_total counter", text)
        self.assertEqual(metric_value(text, 'obsgw_request_duration_seconds_count{route="r"}'), 2)
        self.assertEqual(metric_value(text, 'obsgw_request_duration_seconds_bucket{route="r",le="+Inf"}'), 2)
        buckets = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith('obsgw_request_duration_seconds_bucket{route="r",')]
        self.assertEqual(buckets, sorted(buckets), "histogram buckets are not cumulative")
        self.assertGreaterEqual(metric_value(text, "obsgw_active_connections"), 1)
        for line in text.splitlines():
            if line and not line.startswith("#"):
                float(line.rsplit(" ", 1)[1])  # every sample has a numeric value

    def test_admin_rejects_other_methods_and_paths(self):
        """Admin endpoints take GET/HEAD only (405 with Allow) and unknown paths are 404 JSON."""
        r = self.gw.admin_get("/health", method="POST")
        self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD"))
        r = self.gw.admin_get("/nope")
        self.assertEqual((r.status, r.json()["error"]), (404, "not_found"))

    def test_admin_endpoints_not_on_proxy_listener(self):
        """/stats on the proxy port is routed like any request (here: 404 no_route), never answered by admin."""
        r = request(self.gw.port, "GET", "/stats")
        self.assertEqual((r.status, r.json()["error"]), (404, "no_route"))


if __name__ == "__main__":
    unittest.main()
