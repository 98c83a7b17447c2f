"""Traffic policies through a real gatewayd: ip_rules (IPv4 and IPv6, per route and top-level), trusted proxies
(the right-most untrusted X-Forwarded-For address is the client), rate limits (requests and bytes, keyed by client
address, header, tenant or shared globally), the region header, and the edge figures in /stats and /metrics.

Rate-limit buckets live in the gateway process and are keyed by limit name, so every test uses its own limit name
or its own client address: the tests of one class do not depend on each other's order."""

import hashlib
import itertools
import socket
import sys
import time
import unittest

from harness import (rate_limit_spec, ConnectionClosed, Gateway, HttpConnection, IncompleteResponse, build_request, chunk_encode,
                     make_config, metric_value, request, route, run_check, upstream_entry, wait_until)
from test_redis_limits import fast_upstream, hammer, upstream_hits
from upstream import EchoUpstream, RawUpstream, read_request_head

HOUR = 3600


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def seen_header(response, name):
    """The values of `name` among the headers the echo upstream received, as a list (wire order)."""
    return [v for n, v in response.json()["headers"] if n.lower() == name.lower()]


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


limit = rate_limit_spec


def rate_limit(*limits, **options):
    policy = {"type": "rate_limit", "limits": list(limits)}
    policy.update(options)
    return policy


def ip_rules(allow=None, deny=None):
    policy = {"type": "ip_rules"}
    if allow is not None:
        policy["allow"] = allow
    if deny is not None:
        policy["deny"] = deny
    return policy


def port_of(gw, address):
    """The port gatewayd reported for its listener on `address`."""
    ports = [l["port"] for l in gw.lines if l.get("msg") == "listening" and l.get("address") == address]
    assert len(ports) == 1, (address, gw.lines[:10])
    return ports[0]


class Client:
    """Requests to one gatewayd listener, over IPv4 or IPv6 loopback."""

    def __init__(self, gw, host="127.0.0.1"):
        self.host = host
        self.port = port_of(gw, host)
        self.authority = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def __call__(self, target, headers=None, method="GET", body=None):
        return request(self.port, method, target, headers, body, host=self.host, host_header=self.authority)


# ---------------------------------------------------------------------------------------------------------
# ip_rules


@unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
class IpRulesTest(unittest.TestCase):
    """ip_rules on routes, judged on the TCP peer (no trusted proxies): gatewayd listens on 127.0.0.1 and ::1."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        keys = {"type": "api_key", "keys": [{"id": "k", "sha256": sha256("the-key"), "tenants": ["acme"]}]}
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("open", "echo", path_prefix="/open"),
             route("deny_v4", "echo", path_prefix="/deny-v4", policies=[ip_rules(deny=["127.0.0.0/8"])]),
             route("deny_v6", "echo", path_prefix="/deny-v6", policies=[ip_rules(deny=["::1"])]),
             route("allow_v4", "echo", path_prefix="/allow-v4", policies=[ip_rules(allow=["127.*"])]),
             route("allow_v6", "echo", path_prefix="/allow-v6", policies=[ip_rules(allow=["::1", "10.0.0.0/8"])]),
             route("allow_other", "echo", path_prefix="/allow-other",
                   policies=[ip_rules(allow=["10.*", "2001:db8::/32"])]),
             route("deny_wins", "echo", path_prefix="/deny-wins",
                   policies=[ip_rules(allow=["127.0.0.1", "::1"], deny=["127.0.0.1"])]),
             route("any_wildcard", "echo", path_prefix="/deny-all", policies=[ip_rules(deny=["*"])]),
             route("keyed", "echo", path_prefix="/keyed", policies=[keys, ip_rules(deny=["127.0.0.1"])])],
            server={"listen": ["127.0.0.1:0", "[::1]:0"]})
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.v4 = Client(cls.gw, "127.0.0.1")
        cls.v6 = Client(cls.gw, "::1")

    def setUp(self):
        self.up.reset()

    def assert_refused(self, response, code):
        self.assertEqual(response.status, 403, response)
        self.assertEqual(response.header("Content-Type"), "application/json")
        body = response.json()
        self.assertEqual(body["error"], code, body)
        self.assertTrue(body.get("message"), body)
        self.assertEqual(body.get("request_id"), response.header("X-Request-Id"))

    def test_both_families_pass_an_open_route(self):
        """Control: without rules both loopback addresses are served, and the upstream sees each address."""
        r = self.v4("/open/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Forwarded-For"), ["127.0.0.1"])
        r = self.v6("/open/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Forwarded-For"), ["::1"])

    def test_deny_ipv4_network(self):
        """deny ["127.0.0.0/8"]: 127.0.0.1 gets 403 ip_denied and never reaches the upstream; ::1 passes."""
        self.assert_refused(self.v4("/deny-v4/x"), "ip_denied")
        self.assertEqual(self.up.hits, 0)
        self.assertEqual(self.v6("/deny-v4/x").status, 200)
        self.assertEqual(self.up.hits, 1)

    def test_deny_ipv6_address(self):
        """deny ["::1"]: ::1 gets 403 ip_denied; 127.0.0.1 passes."""
        self.assert_refused(self.v6("/deny-v6/x"), "ip_denied")
        self.assertEqual(self.up.hits, 0)
        self.assertEqual(self.v4("/deny-v6/x").status, 200)

    def test_allow_ipv4_wildcard(self):
        """allow ["127.*"]: 127.0.0.1 passes; ::1 is not on the list: 403 ip_not_allowed."""
        self.assertEqual(self.v4("/allow-v4/x").status, 200)
        self.assert_refused(self.v6("/allow-v4/x"), "ip_not_allowed")
        self.assertEqual(self.up.hits, 1)

    def test_allow_ipv6_address(self):
        """allow ["::1", "10.0.0.0/8"]: ::1 passes; 127.0.0.1 gets 403 ip_not_allowed."""
        self.assertEqual(self.v6("/allow-v6/x").status, 200)
        self.assert_refused(self.v4("/allow-v6/x"), "ip_not_allowed")
        self.assertEqual(self.up.hits, 1)

    def test_allow_list_without_either_loopback(self):
        """An allow list that names neither loopback address refuses both families."""
        self.assert_refused(self.v4("/allow-other/x"), "ip_not_allowed")
        self.assert_refused(self.v6("/allow-other/x"), "ip_not_allowed")
        self.assertEqual(self.up.hits, 0)

    def test_deny_wins_over_allow(self):
        """An address on both lists is denied (ip_denied, not ip_not_allowed); the other allowed address passes."""
        self.assert_refused(self.v4("/deny-wins/x"), "ip_denied")
        self.assertEqual(self.v6("/deny-wins/x").status, 200)

    def test_star_denies_every_family(self):
        """deny ["*"] covers IPv4 and IPv6."""
        self.assert_refused(self.v4("/deny-all/x"), "ip_denied")
        self.assert_refused(self.v6("/deny-all/x"), "ip_denied")
        self.assertEqual(self.up.hits, 0)

    def test_ip_rules_run_before_authentication(self):
        """ip_rules run in the admit phase: a denied address without a key gets 403 ip_denied, not 401; an
        address that is not denied gets the key check (401 without a key, 200 with it)."""
        self.assert_refused(self.v4("/keyed/x"), "ip_denied")
        self.assert_refused(self.v4("/keyed/x", {"X-API-Key": "the-key"}), "ip_denied")
        r = self.v6("/keyed/x")
        self.assertEqual((r.status, r.json()["error"]), (401, "missing_api_key"))
        self.assertEqual(self.v6("/keyed/x", {"X-API-Key": "the-key"}).status, 200)
        self.assertEqual(self.up.hits, 1)

    def test_refusal_is_logged(self):
        """The access log records the refusal: status 403, error ip_denied, the client address, no upstream."""
        r = self.v6("/deny-v6/logged")
        self.assertEqual(r.status, 403)
        line = self.gw.wait_access(lambda l: l.get("path") == "/deny-v6/logged")
        self.assertEqual((line["status"], line.get("error"), line["client_ip"], line["upstream"]),
                         (403, "ip_denied", "::1", ""))


@unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
class GlobalIpRulesTest(unittest.TestCase):
    """ip_rules in the top-level "policies" apply to every route, before the route's own policies."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("a", "echo", path_prefix="/a"),
             route("b", "echo", path_prefix="/b"),
             route("c_denies_v6", "echo", path_prefix="/c", policies=[ip_rules(deny=["::1"])])],
            server={"listen": ["127.0.0.1:0", "[::1]:0"]})
        cfg["policies"] = [ip_rules(allow=["::1"])]
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.v4 = Client(cls.gw, "127.0.0.1")
        cls.v6 = Client(cls.gw, "::1")

    def test_global_allow_list_applies_to_every_route(self):
        """allow ["::1"] at the top level: 127.0.0.1 is refused on every route (ip_not_allowed), ::1 is served
        on the routes without rules of their own."""
        before = self.up.hits
        for path in ("/a/x", "/b/x", "/c/x"):
            r = self.v4(path)
            self.assertEqual((r.status, r.json()["error"]), (403, "ip_not_allowed"), path)
        self.assertEqual(self.up.hits, before)
        for path in ("/a/x", "/b/x"):
            r = self.v6(path)
            self.assertEqual(r.status, 200, (path, r))
            self.assertEqual(r.header("X-Route"), path[1])
        self.assertEqual(self.up.hits, before + 2)

    def test_route_rules_add_to_the_global_ones(self):
        """A route's own deny still applies to an address the global allow list lets in."""
        r = self.v6("/c/x")
        self.assertEqual((r.status, r.json()["error"]), (403, "ip_denied"))


# ---------------------------------------------------------------------------------------------------------
# trusted proxies


class TrustedProxiesTest(unittest.TestCase):
    """client_ip.trusted_proxies = 127.0.0.1 and 10.0.0.0/8: the peer (127.0.0.1) is a trusted proxy, so the
    client is the right-most X-Forwarded-For address that is not trusted."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("echo", "echo", path_prefix="/echo"),
             route("guarded", "echo", path_prefix="/guarded", policies=[ip_rules(deny=["203.0.113.0/24"])]),
             route("allowlisted", "echo", path_prefix="/allowlisted", policies=[ip_rules(allow=["198.51.100.7"])])])
        cfg["client_ip"] = {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]}
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port
        cls.paths = itertools.count()

    def get(self, target, xff=None, headers=None):
        h = list(headers or [])
        if xff is not None:
            h.append(("X-Forwarded-For", xff))
        return request(self.port, "GET", target, h)

    def assert_chain(self, xff, upstream_sees, client, headers=None):
        path = f"/echo/chain-{next(self.paths)}"
        r = self.get(path, xff, headers)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Forwarded-For"), [upstream_sees], xff)
        line = self.gw.wait_access(lambda l: l.get("path") == path)
        self.assertEqual(line["client_ip"], client, xff)

    def test_right_most_untrusted_address_is_the_client(self):
        """X-Forwarded-For "6.6.6.6, 203.0.113.5": the client is 203.0.113.5 (what the trusted proxy saw); the
        address left of it is the client's own claim and is dropped; the upstream gets the chain from the client
        on plus the peer, and the access log names the client."""
        self.assert_chain("6.6.6.6, 203.0.113.5", "203.0.113.5, 127.0.0.1", "203.0.113.5")

    def test_connection_header_cannot_erase_the_chain(self):
        """A trusted proxy relaying `Connection: X-Forwarded-For` (hop-by-hop removal) must not erase the chain and
        make itself the client: the client is resolved first, and the deny list still judges it."""
        self.assert_chain("203.0.113.5", "203.0.113.5, 127.0.0.1", "203.0.113.5",
                          headers=[("Connection", "X-Forwarded-For")])
        r = self.get("/guarded/conn", "203.0.113.9", [("Connection", "X-Forwarded-For")])
        self.assertEqual(r.status, 403)
        self.assertEqual(r.json()["error"], "ip_denied")

    def test_trusted_hops_after_the_client_are_kept(self):
        """Trusted hops (10.x) right of the client stay in the forwarded chain; the client is the first untrusted."""
        self.assert_chain("6.6.6.6, 198.51.100.7, 10.1.2.3, 10.9.9.9", "198.51.100.7, 10.1.2.3, 10.9.9.9, 127.0.0.1",
                          "198.51.100.7")

    def test_several_header_fields_are_one_list(self):
        """Two X-Forwarded-For fields read as one comma-separated list, in order."""
        self.assert_chain(None, "198.51.100.7, 10.0.0.1, 127.0.0.1", "198.51.100.7",
                          headers=[("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7, 10.0.0.1")])

    def test_addresses_are_normalised(self):
        """Ports and brackets are dropped from the forwarded chain; IPv6 clients are written plainly."""
        self.assert_chain("198.51.100.7:5000", "198.51.100.7, 127.0.0.1", "198.51.100.7")
        self.assert_chain("[2001:db8::1]:443", "2001:db8::1, 127.0.0.1", "2001:db8::1")

    def test_only_trusted_addresses(self):
        """When every address is trusted, the left-most one is the client."""
        self.assert_chain("10.0.0.9, 10.0.0.8", "10.0.0.9, 10.0.0.8, 127.0.0.1", "10.0.0.9")

    def test_garbage_stops_the_walk(self):
        """An unparsable right-most entry is not trusted further: the client is the peer itself, and nothing the
        client wrote is forwarded."""
        self.assert_chain("198.51.100.7, not-an-address", "127.0.0.1", "127.0.0.1")

    def test_without_the_header_the_peer_is_the_client(self):
        """No X-Forwarded-For: the trusted peer is the client."""
        self.assert_chain(None, "127.0.0.1", "127.0.0.1")

    def test_ip_rules_judge_the_resolved_client(self):
        """deny 203.0.113.0/24 refuses a client behind the trusted proxy; an address the client prepends to look
        allowed does not help (the right-most untrusted address decides)."""
        before = self.up.hits
        r = self.get("/guarded/x", "203.0.113.5")
        self.assertEqual((r.status, r.json()["error"]), (403, "ip_denied"))
        r = self.get("/guarded/x", "198.51.100.7, 203.0.113.5")
        self.assertEqual((r.status, r.json()["error"]), (403, "ip_denied"))
        r = self.get("/allowlisted/x", "198.51.100.7, 203.0.113.5")
        self.assertEqual((r.status, r.json()["error"]), (403, "ip_not_allowed"))
        r = self.get("/allowlisted/x")  # the proxy itself is not on the allow list
        self.assertEqual((r.status, r.json()["error"]), (403, "ip_not_allowed"))
        self.assertEqual(self.up.hits, before)
        self.assertEqual(self.get("/guarded/x", "198.51.100.7").status, 200)
        r = self.get("/allowlisted/x", "203.0.113.5, 198.51.100.7, 10.0.0.1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Forwarded-For"), ["198.51.100.7, 10.0.0.1, 127.0.0.1"])


class UntrustedPeerTest(unittest.TestCase):
    """A peer that is not a trusted proxy: its X-Forwarded-For is ignored and replaced by the peer address."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        routes = [route("echo", "echo", path_prefix="/echo"),
                  route("guarded", "echo", path_prefix="/guarded", policies=[ip_rules(deny=["203.0.113.0/24"])]),
                  route("allowlisted", "echo", path_prefix="/allowlisted",
                        policies=[ip_rules(allow=["203.0.113.5"])])]
        cfg = make_config({"echo": upstream_entry(cls.up.url)}, routes)
        cls.plain = Gateway.start(cfg)  # no client_ip section at all
        cls.addClassCleanup(cls.plain.stop)
        cfg = make_config({"echo": upstream_entry(cls.up.url)}, routes)
        cfg["client_ip"] = {"trusted_proxies": ["10.0.0.0/8", "::1"]}  # trusts proxies, but not 127.0.0.1
        cls.other = Gateway.start(cfg)
        cls.addClassCleanup(cls.other.stop)

    def test_forwarded_for_is_replaced(self):
        """The client's X-Forwarded-For never reaches the upstream; the access log has the peer address."""
        for gw in (self.plain, self.other):
            path = f"/echo/replaced-{gw.port}"
            r = request(gw.port, "GET", path, [("X-Forwarded-For", "6.6.6.6, 203.0.113.5")])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(seen_header(r, "X-Forwarded-For"), ["127.0.0.1"])
            self.assertEqual(gw.wait_access(lambda l: l.get("path") == path)["client_ip"], "127.0.0.1")

    def test_ip_rules_judge_the_peer(self):
        """A spoofed X-Forwarded-For neither gets a client denied nor allowed."""
        for gw in (self.plain, self.other):
            self.assertEqual(request(gw.port, "GET", "/guarded/x", [("X-Forwarded-For", "203.0.113.5")]).status, 200)
            r = request(gw.port, "GET", "/allowlisted/x", [("X-Forwarded-For", "203.0.113.5")])
            self.assertEqual((r.status, r.json()["error"]), (403, "ip_not_allowed"))


@unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
class TrustedIpv6ProxyTest(unittest.TestCase):
    """trusted_proxies ["::1"]: a request over IPv6 from ::1 is resolved through X-Forwarded-For, one over IPv4
    from 127.0.0.1 (not trusted) is not."""

    def test_only_the_trusted_family_is_resolved(self):
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config({"echo": upstream_entry(up.url)},
                          [route("r", "echo", path_prefix="/", policies=[ip_rules(deny=["2001:db8::/32"])])],
                          server={"listen": ["127.0.0.1:0", "[::1]:0"]})
        cfg["client_ip"] = {"trusted_proxies": ["::1"]}
        gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        v4, v6 = Client(gw, "127.0.0.1"), Client(gw, "::1")
        r = v6("/v6", [("X-Forwarded-For", "2001:db8::66, 203.0.113.5")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Forwarded-For"), ["203.0.113.5, ::1"])
        r = v6("/v6", [("X-Forwarded-For", "203.0.113.5, 2001:db8::7")])
        self.assertEqual((r.status, r.json()["error"]), (403, "ip_denied"))
        r = v4("/v4", [("X-Forwarded-For", "2001:db8::7")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(gw.wait_access(lambda l: l.get("path") == "/v4")["client_ip"], "127.0.0.1")
        self.assertEqual(gw.wait_access(lambda l: l.get("status") == 403)["client_ip"], "2001:db8::7")


# ---------------------------------------------------------------------------------------------------------
# rate limits


API_KEYS = {"type": "api_key", "keys": [
    {"id": "acme-key", "sha256": sha256("acme-secret"), "tenants": ["acme"]},
    {"id": "globex-key", "sha256": sha256("globex-secret"), "tenants": ["globex"]},
]}


class RateLimitTest(unittest.TestCase):
    """Request-count limits on routes. The peer 127.0.0.1 is a trusted proxy, so each test picks its own client
    addresses through X-Forwarded-For and gets buckets of its own."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("per_ip", "echo", path_prefix="/per-ip", policies=[rate_limit(limit("per-ip", 5))]),
             route("by_header", "echo", path_prefix="/by-header",
                   policies=[rate_limit(limit("per-client-id", 2, key="header", header="X-Client-Id"))]),
             route("burst", "echo", path_prefix="/burst",
                   policies=[rate_limit(limit("burst", 1, per=None, per_ms=1000, burst=2))]),
             route("quiet", "echo", path_prefix="/quiet",
                   policies=[rate_limit(limit("quiet", 2), response_headers=False)]),
             route("keyed", "echo", path_prefix="/keyed",
                   policies=[API_KEYS, rate_limit(limit("keyed-ip", 2))]),
             route("tenant", "echo", path_prefix="/tenant",
                   policies=[API_KEYS, {"type": "tenant"}, rate_limit(limit("per-tenant", 2, key="tenant"))])])
        cfg["client_ip"] = {"trusted_proxies": ["127.0.0.1"]}
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def get(self, target, client=None, headers=None, method="GET", body=None):
        h = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if client is not None:
            h.append(("X-Forwarded-For", client))
        return request(self.port, method, target, h, body)

    def hits(self, prefix):
        return len([r for r in self.up.snapshot() if r.path.startswith(prefix)])

    def assert_limited(self, r, name, limit_value, policy, retry_after=None):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        body = r.json()
        self.assertEqual(body["error"], "rate_limited", body)
        self.assertIn(f'"{name}"', body["message"])
        self.assertEqual(body["limit"], name, body)
        retry = int(r.header("Retry-After"))
        self.assertEqual(body["retry_after_s"], retry, body)
        self.assertGreaterEqual(retry, 1)
        if retry_after is not None:
            self.assertEqual(retry, retry_after, r)
        self.assertEqual(r.header("RateLimit-Limit"), str(limit_value))
        self.assertEqual(r.header("RateLimit-Remaining"), "0")
        self.assertGreaterEqual(int(r.header("RateLimit-Reset")), retry)
        self.assertEqual(r.header("RateLimit-Policy"), policy)
        return body

    def test_exactly_n_requests_then_429(self):
        """5 per hour per client address: exactly 5 pass, counting RateLimit-Remaining down 4..0 (Reset grows by
        the 720 s emission interval each time), then 429 with Retry-After 720 and the RateLimit-* headers; a
        refused request costs nothing, so the next one is refused the same way."""
        client = "198.51.100.1"
        for i in range(5):
            r = self.get("/per-ip/exact", client)
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.header("RateLimit-Limit"), "5")
            self.assertEqual(r.header("RateLimit-Remaining"), str(4 - i))
            self.assertEqual(r.header("RateLimit-Reset"), str(720 * (i + 1)))
            self.assertEqual(r.header("RateLimit-Policy"), "5;w=3600")
        self.assertEqual(self.hits("/per-ip/exact"), 5)
        for _ in range(2):
            r = self.get("/per-ip/exact", client)
            body = self.assert_limited(r, "per-ip", 5, "5;w=3600", retry_after=720)
            self.assertEqual(r.header("RateLimit-Reset"), str(HOUR))
            self.assertEqual(body["request_id"], r.header("X-Request-Id"))
        self.assertEqual(self.hits("/per-ip/exact"), 5)
        line = self.gw.wait_access(lambda l: l.get("path") == "/per-ip/exact" and l.get("status") == 429)
        self.assertEqual((line["error"], line["client_ip"]), ("rate_limited", client))

    def test_clients_have_separate_buckets(self):
        """Two clients behind the trusted proxy each get their own 5; the peer's own bucket is separate too."""
        for _ in range(5):
            self.assertEqual(self.get("/per-ip/x", "198.51.100.2").status, 200)
        self.assertEqual(self.get("/per-ip/x", "198.51.100.2").status, 429)
        r = self.get("/per-ip/x", "198.51.100.3")
        self.assertEqual((r.status, r.header("RateLimit-Remaining")), (200, "4"))
        r = self.get("/per-ip/x")  # no X-Forwarded-For: the proxy's own address, 127.0.0.1
        self.assertEqual((r.status, r.header("RateLimit-Remaining")), (200, "4"))
        # The same client written with a port and with a spoofed prefix is still the same bucket.
        self.assertEqual(self.get("/per-ip/x", "6.6.6.6, 198.51.100.2:4444").status, 429)

    def test_limit_keyed_by_header(self):
        """key "header": each X-Client-Id value has its own bucket of 2; the header name is case-insensitive;
        requests without the header share one bucket."""
        for _ in range(2):
            self.assertEqual(self.get("/by-header/x", headers={"X-Client-Id": "alpha"}).status, 200)
        self.assert_limited(self.get("/by-header/x", headers={"x-client-id": "alpha"}), "per-client-id", 2,
                            "2;w=3600", retry_after=1800)
        r = self.get("/by-header/x", headers={"X-Client-Id": "beta"})
        self.assertEqual((r.status, r.header("RateLimit-Remaining")), (200, "1"))
        # Different client addresses do not matter for a header key.
        self.assertEqual(self.get("/by-header/x", "198.51.100.9", {"X-Client-Id": "alpha"}).status, 429)
        for _ in range(2):
            self.assertEqual(self.get("/by-header/x", "198.51.100.10").status, 200)
        self.assertEqual(self.get("/by-header/x", "198.51.100.11").status, 429)
        self.assertEqual(self.hits("/by-header"), 5)

    def test_burst_and_refill(self):
        """1 per 1000 ms (per_ms) with burst 2: two pass at once, the third is refused (Retry-After 1), and one
        passes again once the interval has gone by (polled, at most ~1 s)."""
        client = "198.51.100.20"
        started = time.monotonic()
        for _ in range(2):
            r = self.get("/burst/x", client)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("RateLimit-Limit"), "2")
        self.assertEqual(r.header("RateLimit-Policy"), "1;w=1;burst=2")
        self.assert_limited(self.get("/burst/x", client), "burst", 2, "1;w=1;burst=2", retry_after=1)
        r = wait_until(lambda: (lambda r: r if r.status == 200 else None)(self.get("/burst/x", client)), 2.0, 0.05,
                       "the bucket to refill")
        self.assertGreaterEqual(time.monotonic() - started, 0.9)  # not before one interval
        self.assertEqual(r.header("RateLimit-Remaining"), "0")

    def test_response_headers_off(self):
        """response_headers false: admitted responses carry no RateLimit-* headers; a 429 still does."""
        client = "198.51.100.30"
        for _ in range(2):
            r = self.get("/quiet/x", client)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([n for n, _ in r.headers if n.lower().startswith("ratelimit")], [])
        self.assert_limited(self.get("/quiet/x", client), "quiet", 2, "2;w=3600")

    def test_client_limit_runs_before_authentication(self):
        """A client_ip limit runs in the admit phase: requests without a key are counted (401, 401) and then
        refused with 429 before the key is looked at."""
        client = "198.51.100.40"
        for _ in range(2):
            r = self.get("/keyed/x", client)
            self.assertEqual((r.status, r.json()["error"]), (401, "missing_api_key"))
        self.assert_limited(self.get("/keyed/x", client, {"X-API-Key": "acme-secret"}), "keyed-ip", 2, "2;w=3600")
        self.assertEqual(self.hits("/keyed"), 0)
        self.assertEqual(self.get("/keyed/x", "198.51.100.41", {"X-API-Key": "acme-secret"}).status, 200)

    def test_tenant_limit_runs_after_authentication(self):
        """key "tenant": unauthenticated requests get 401 and are not counted; each tenant has its own 2, whatever
        the client address."""
        for _ in range(3):
            self.assertEqual(self.get("/tenant/x", "198.51.100.50").status, 401)
        for client in ("198.51.100.50", "198.51.100.51"):
            r = self.get("/tenant/x", client, {"X-API-Key": "acme-secret"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(seen_header(r, "X-Scope-OrgID"), ["acme"])
        self.assert_limited(self.get("/tenant/x", "198.51.100.52", {"X-API-Key": "acme-secret"}), "per-tenant", 2,
                            "2;w=3600")
        r = self.get("/tenant/x", "198.51.100.50", {"X-API-Key": "globex-secret"})
        self.assertEqual((r.status, r.header("RateLimit-Remaining")), (200, "1"))
        self.assertEqual(self.hits("/tenant"), 3)

    def test_refused_body_is_not_read_as_a_request(self):
        """A refused POST on a keep-alive connection: the unread body (which looks like a request) is skipped or
        the connection closed; it never reaches the upstream as a request of its own."""
        client = "198.51.100.60"
        for _ in range(5):
            self.assertEqual(self.get("/per-ip/x", client).status, 200)
        smuggled = build_request("GET", "/per-ip/smuggled", host_header="x")
        with HttpConnection(self.port) as c:
            c.request("POST", "/per-ip/x", [("X-Forwarded-For", client)], smuggled)
            self.assertEqual(c.read_response().status, 429)
            try:
                c.request("GET", "/per-ip/after", [("X-Forwarded-For", "198.51.100.61")])
                r = c.read_response()
            except (OSError, ConnectionClosed, IncompleteResponse):
                r = None  # closing the connection is acceptable; answering the smuggled request is not
            if r is not None:
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], "/per-ip/after")
        self.assertEqual([r.path for r in self.up.snapshot() if r.path == "/per-ip/smuggled"], [])


class LocalLimitAccuracyTest(unittest.TestCase):
    """The in-process store over time, across io threads (the fleet test in test_redis_limits.py does the same
    with Redis)."""

    def test_global_rate_is_enforced_within_5_percent_across_io_threads(self):
        """200 per second, burst 200, global, in process, one gatewayd with 2 io threads hammered for 3 s by 8
        keep-alive clients (far above the rate; the kernel spreads their connections over both threads): the
        admitted count is within 5% of burst + rate x elapsed, the rest is 429 rate_limited, the upstream saw
        exactly the admitted ones and obsgw_rate_limited_total counts the refusals."""
        up = fast_upstream()
        self.addCleanup(up.stop)
        cfg = make_config({"up": upstream_entry(up.url)},
                          [route("rate", "up", path="/rate", tag=False,
                                 policies=[rate_limit(limit("local-rate", 200, per="second", key="global", burst=200))])],
                          server={"threads": 2}, logging={"access_log": False})
        gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        rate, burst = 200, 200
        run = hammer([gw], "/rate", threads=8, window=3.0, cap=6000)
        admitted, refused = run.total[200], run.total[429]
        expected = burst + rate * run.elapsed
        figures = (f"admitted {admitted}, expected {expected:.1f} (burst {burst} + {rate}/s x {run.elapsed:.3f} s), "
                   f"deviation {100.0 * (admitted - expected) / expected:+.2f}%; refused {refused}")
        print(f"\n[in-process accuracy] {figures}", file=sys.stderr)
        self.assertEqual(run.unexpected, [], "responses other than 200 and 429 rate_limited")
        self.assertEqual(set(run.total), {200, 429}, figures)
        self.assertGreater(refused, 2 * admitted, "the clients did not saturate the limit: " + figures)
        self.assertLessEqual(abs(admitted - expected), 0.05 * expected, figures)
        self.assertEqual(metric_value(gw.metrics(), 'obsgw_rate_limited_total{limit="local-rate"}'), refused)
        self.assertEqual(upstream_hits(up, "/rate"), admitted)


@unittest.skipUnless(have_ipv6(), "no IPv6 loopback")
class IPv6RateLimitTest(unittest.TestCase):
    """A client_ip limit keeps IPv4 and IPv6 clients apart."""

    def test_families_have_separate_buckets(self):
        up = EchoUpstream()
        self.addCleanup(up.stop)
        gw = Gateway.start(make_config({"echo": upstream_entry(up.url)},
                                       [route("r", "echo", path_prefix="/", policies=[rate_limit(limit("v", 1))])],
                                       server={"listen": ["127.0.0.1:0", "[::1]:0"]}))
        self.addCleanup(gw.stop)
        v4, v6 = Client(gw, "127.0.0.1"), Client(gw, "::1")
        self.assertEqual(v4("/x").status, 200)
        self.assertEqual(v4("/x").status, 429)
        self.assertEqual(v6("/x").status, 200)
        self.assertEqual(v6("/x").status, 429)
        self.assertEqual(up.hits, 2)


class SharedLimitTest(unittest.TestCase):
    """A global limit declared once in the top-level "policies" is one bucket for every route."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config({"echo": upstream_entry(cls.up.url)},
                          [route("a", "echo", path_prefix="/a"), route("b", "echo", path_prefix="/b")])
        cfg["policies"] = [rate_limit(limit("shared", 4, key="global"))]
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)

    def test_two_routes_draw_on_one_bucket(self):
        """4 per hour shared: a, b, a, b pass with Remaining 3, 2, 1, 0; then both routes are refused; the
        upstream saw 4 requests; /metrics counts the 429s under the limit's name."""
        port = self.gw.port
        for i, path in enumerate(("/a/1", "/b/1", "/a/2", "/b/2")):
            r = request(port, "GET", path)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Route"), path[1])
            self.assertEqual(r.header("RateLimit-Remaining"), str(3 - i))
        for path in ("/a/3", "/b/3", "/b/4"):
            r = request(port, "GET", path)
            self.assertEqual((r.status, r.json()["error"]), (429, "rate_limited"), path)
            self.assertIn('"shared"', r.json()["message"])
            self.assertEqual(r.header("Retry-After"), "900")
        self.assertEqual(self.up.hits, 4)
        self.assertEqual(metric_value(self.gw.metrics(), 'obsgw_rate_limited_total{limit="shared"}'), 3)

    def test_one_name_on_two_routes_is_refused(self):
        """Declaring a limit with one name on two routes is a config error pointing to the top-level policies."""
        cfg = make_config({"echo": upstream_entry("http://127.0.0.1:9")},
                          [route("a", "echo", path_prefix="/a", policies=[rate_limit(limit("dup", 1))]),
                           route("b", "echo", path_prefix="/b", policies=[rate_limit(limit("dup", 1))])])
        code, _, err, _ = run_check(cfg)
        self.assertEqual(code, 2, err)
        self.assertIn('limit name "dup" is already used', err)
        self.assertIn('declare it once in the top-level "policies"', err)


class SeveralLimitersTest(unittest.TestCase):
    """Two rate_limit policies on one route (a top-level one and the route's own), and an upstream that sends
    RateLimit-* headers of its own: the client must still get one coherent set of RateLimit-* fields."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)

        def answer(conn, raw):
            buf = bytearray()
            while read_request_head(conn, buf):
                conn.sendall(b"HTTP/1.1 200 OK\r\nRateLimit-Limit: 50\r\nRateLimit-Remaining: 7\r\n"
                             b"RateLimit-Reset: 9\r\nRateLimit-Policy: 50;w=60\r\nContent-Length: 2\r\n\r\nok")

        cls.raw = RawUpstream(answer)
        cls.addClassCleanup(cls.raw.stop)
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url), "raw": upstream_entry(cls.raw.url)},
            [route("tight_route", "echo", path_prefix="/tight-route", policies=[rate_limit(limit("route-tight", 1))]),
             route("loose_route", "echo", path_prefix="/loose-route",
                   policies=[rate_limit(limit("route-loose", 100, key="header", header="X-Bucket"))]),
             route("upstream_headers", "raw", path_prefix="/upstream-headers",
                   policies=[rate_limit(limit("with-upstream", 100, key="route"))])])
        # Applies to every route, before the route's own limiter: 2 per hour for each X-Bucket value.
        cfg["policies"] = [rate_limit(limit("top", 2, key="header", header="X-Bucket"))]
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def ratelimit_fields(self, r):
        return [(n, v) for n, v in r.headers if n.lower().startswith("ratelimit-") or n.lower() == "retry-after"]

    def assert_one_of_each(self, r):
        for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"):
            self.assertEqual(len(r.header_all(name)), 1, (name, self.ratelimit_fields(r)))

    def test_refusal_by_a_later_limiter_has_one_set_of_headers(self):
        """The top-level limiter (2 per X-Bucket value) admits and sets its RateLimit-* headers; the route's own
        limiter (1 per client) then refuses: the 429 must carry only the refusing limit's figures, not both sets
        (two RateLimit-Limit fields, "1" and "2", contradict each other)."""
        h = {"X-Bucket": "refusal"}
        self.assertEqual(request(self.port, "GET", "/tight-route/1", h).status, 200)
        r = request(self.port, "GET", "/tight-route/2", h)
        self.assertEqual((r.status, r.json()["error"]), (429, "rate_limited"))
        self.assertIn('"route-tight"', r.json()["message"])
        self.assert_one_of_each(r)
        self.assertEqual((r.header("RateLimit-Limit"), r.header("RateLimit-Remaining")), ("1", "0"))

    def test_admitted_headers_speak_for_the_tightest_limit(self):
        """Top-level limit 2 per X-Bucket value, route limit 100: the client is told 1 then 0 remaining (the
        limit that will refuse it), not 99 and 98 from the looser limit that happened to run last."""
        h = {"X-Bucket": "tightest"}
        seen = []
        for i in range(3):
            r = request(self.port, "GET", f"/loose-route/{i}", h)
            seen.append((r.status, r.header("RateLimit-Limit"), r.header("RateLimit-Remaining")))
        self.assertEqual(seen[2], (429, "2", "0"), seen)
        self.assertEqual(seen[:2], [(200, "2", "1"), (200, "2", "0")], seen)

    def test_upstream_ratelimit_headers_are_not_duplicated(self):
        """An upstream's own RateLimit-* fields and the gateway's must not both reach the client: each of these
        fields is a single value, and two of them contradict each other."""
        r = request(self.port, "GET", "/upstream-headers/x", {"X-Bucket": "upstream"})
        self.assertEqual((r.status, r.body), (200, b"ok"))
        self.assert_one_of_each(r)

    def test_a_refused_request_does_not_spend_the_shared_budget(self):
        """Top-level global limit 3, route limit 1 per client: client A's refused requests (429 from its own
        limit) must not use up the budget all clients share, or one client that is already being refused
        locks everybody else out. B's first request must pass."""
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config({"echo": upstream_entry(up.url)},
                          [route("r", "echo", path_prefix="/", policies=[rate_limit(limit("per-client", 1))])])
        cfg["client_ip"] = {"trusted_proxies": ["127.0.0.1"]}
        cfg["policies"] = [rate_limit(limit("everyone", 3, key="global"))]
        gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        a = [request(gw.port, "GET", "/a", [("X-Forwarded-For", "198.51.100.1")]) for _ in range(3)]
        self.assertEqual([r.status for r in a], [200, 429, 429])
        self.assertEqual([r.json()["message"].split('"')[1] for r in a[1:]], ["per-client", "per-client"])
        r = request(gw.port, "GET", "/b", [("X-Forwarded-For", "198.51.100.2")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(up.hits, 2)


class ByteLimitTest(unittest.TestCase):
    """unit "bytes", key global: 1000 bytes per hour (burst 1000)."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("bytes", "echo", path_prefix="/bytes",
                   policies=[rate_limit(limit("upload-bytes", 1000, key="global", unit="bytes"))]),
             route("chunked", "echo", path_prefix="/chunked",
                   policies=[rate_limit(limit("chunk-bytes", 1000, key="global", unit="bytes"))])])
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port

    def post(self, path, size):
        return request(self.port, "POST", path, None, b"b" * size)

    def test_byte_budget(self):
        """A body larger than the burst is refused at once with 413 body_exceeds_rate_limit (the head alone is
        enough, nothing is charged); bodies within the budget pass and count down RateLimit-Remaining in bytes; a
        body-less request costs nothing; once the budget is spent a body gets 429 (Retry-After: the missing bytes
        at 3.6 s each). Only the 429s count in obsgw_rate_limited_total."""
        with HttpConnection(self.port) as c:
            c.send(build_request("POST", "/bytes/big", [("Content-Length", "1001")], host_header="x"))
            r = c.read_response()
            self.assertEqual(r.status, 413, r)
            self.assertEqual(r.json()["error"], "body_exceeds_rate_limit")
            self.assertIn('"upload-bytes"', r.json()["message"])
            self.assertTrue(c.wait_closed(3), "the connection stays open after a 413 with an unread body")
        self.assertEqual(self.up.hits, 0)

        r = self.post("/bytes/1", 600)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_len"], 600)
        self.assertEqual((r.header("RateLimit-Limit"), r.header("RateLimit-Remaining")), ("1000", "400"))
        self.assertEqual(r.header("RateLimit-Policy"), "1000;w=3600")

        r = self.post("/bytes/2", 600)
        self.assertEqual((r.status, r.json()["error"]), (429, "rate_limited"))
        self.assertEqual(r.header("Retry-After"), "720")  # 200 bytes too many × 3.6 s
        self.assertEqual(r.header("RateLimit-Remaining"), "0")

        r = request(self.port, "GET", "/bytes/get")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("RateLimit-Remaining"), "400")

        r = self.post("/bytes/3", 400)
        self.assertEqual((r.status, r.header("RateLimit-Remaining")), (200, "0"))
        r = self.post("/bytes/4", 1)
        self.assertEqual((r.status, r.json()["error"]), (429, "rate_limited"))
        self.assertEqual([x.path for x in self.up.snapshot()], ["/bytes/1", "/bytes/get", "/bytes/3"])
        text = self.gw.metrics()
        self.assertEqual(metric_value(text, 'obsgw_rate_limited_total{limit="upload-bytes"}'), 2)
        self.assertEqual(metric_value(text, 'obsgw_rejections_total{reason="body_exceeds_rate_limit"}'), 1)

    def test_chunked_body_is_charged_after_the_fact(self):
        """A chunked body's size is unknown up front: it is let in on a bucket not in debt and charged in full
        once read, so a 3000-byte chunked body passes, and afterwards the bucket is ~2000 bytes in debt (Retry-After
        ~7204 s) and refuses even body-less requests."""
        with HttpConnection(self.port) as c:
            c.request("POST", "/chunked/big", [("Transfer-Encoding", "chunked")], chunk_encode([b"c" * 1000] * 3))
            r = c.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_len"], 3000)
        self.gw.wait_access(lambda l: l.get("path") == "/chunked/big")  # logged after the charge
        r = self.post("/chunked/small", 1)
        self.assertEqual((r.status, r.json()["error"]), (429, "rate_limited"))
        self.assertAlmostEqual(int(r.header("Retry-After")), 7204, delta=3)
        self.assertEqual(request(self.port, "GET", "/chunked/get").status, 429)
        self.assertEqual([x.path for x in self.up.snapshot() if x.path.startswith("/chunked")], ["/chunked/big"])


# ---------------------------------------------------------------------------------------------------------
# region, /stats, /metrics


class RegionTest(unittest.TestCase):
    """"region" is sent upstream as X-Gateway-Region; a client's own X-Gateway-Region never passes."""

    @classmethod
    def setUpClass(cls):
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cls.cfg = make_config({"echo": upstream_entry(cls.up.url)}, [route("echo", "echo", path_prefix="/")])
        cls.plain = Gateway.start(cls.cfg)
        cls.addClassCleanup(cls.plain.stop)
        cls.regional_cfg = dict(cls.cfg, region="eu-west-1")
        cls.regional = Gateway.start(cls.regional_cfg)
        cls.addClassCleanup(cls.regional.stop)

    def test_upstream_receives_the_region(self):
        r = request(self.regional.port, "GET", "/x")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Gateway-Region"), ["eu-west-1"])
        self.assertIsNone(r.header("X-Gateway-Region"))  # a request header only

    def test_client_copy_is_replaced(self):
        """Two client copies become the one configured value, also when the client names it in Connection."""
        r = request(self.regional.port, "GET", "/x", [("X-Gateway-Region", "us-east-1"),
                                                      ("x-gateway-region", "attacker")])
        self.assertEqual(seen_header(r, "X-Gateway-Region"), ["eu-west-1"])
        r = request(self.regional.port, "GET", "/x", [("Connection", "X-Gateway-Region"),
                                                      ("X-Gateway-Region", "us-east-1")])
        self.assertEqual(seen_header(r, "X-Gateway-Region"), ["eu-west-1"])

    def test_client_copy_is_removed_without_a_region(self):
        r = request(self.plain.port, "GET", "/x", [("X-Gateway-Region", "us-east-1"),
                                                   ("X-Gateway-Region", "eu-west-1")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Gateway-Region"), [])

    def test_stats_region(self):
        """/stats names the region, null when none is configured."""
        self.assertIsNone(self.plain.stats()["region"])
        self.assertEqual(self.regional.stats()["region"], "eu-west-1")

    def test_region_follows_a_reload(self):
        """A reload that changes the region changes the header and /stats; removing it stops the header."""
        gw = Gateway.start(dict(self.cfg, region="ap-south-1"))
        self.addCleanup(gw.stop)
        self.assertEqual(seen_header(request(gw.port, "GET", "/x"), "X-Gateway-Region"), ["ap-south-1"])
        self.assertEqual(gw.reload(dict(self.cfg, region="ap-east-2"))["msg"], "configuration reloaded")
        self.assertEqual(gw.stats()["region"], "ap-east-2")
        self.assertEqual(seen_header(request(gw.port, "GET", "/x"), "X-Gateway-Region"), ["ap-east-2"])
        self.assertEqual(gw.reload(self.cfg)["msg"], "configuration reloaded")
        self.assertIsNone(gw.stats()["region"])
        r = request(gw.port, "GET", "/x", {"X-Gateway-Region": "ap-east-2"})
        self.assertEqual(seen_header(r, "X-Gateway-Region"), [])


class EdgeStatsTest(unittest.TestCase):
    """The edge figures in /stats (total_requests, forwarded, rate_limited, blocked, active_clients, region) and
    obsgw_rate_limited_total in /metrics, after a known mix of traffic."""

    def test_stats_after_traffic(self):
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config(
            {"echo": upstream_entry(up.url)},
            [route("open", "echo", path_prefix="/open"),
             route("limited", "echo", path_prefix="/limited", policies=[rate_limit(limit("stats-limit", 2))]),
             route("blocking", "echo", path_prefix="/blocking",
                   policies=[ip_rules(allow=["198.51.100.0/24"], deny=["198.51.100.66"])])])
        cfg["client_ip"] = {"trusted_proxies": ["127.0.0.1"]}
        cfg["region"] = "eu-central-1"
        gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)

        def get(path, client):
            return request(gw.port, "GET", path, [("X-Forwarded-For", client)]).status

        statuses = []
        statuses += [get("/open/x", c) for c in ("198.51.100.1", "198.51.100.2", "198.51.100.3")]
        statuses += [get("/limited/x", "198.51.100.4") for _ in range(5)]
        statuses += [get("/blocking/x", "198.51.100.66"), get("/blocking/x", "203.0.113.9"),
                     get("/blocking/x", "198.51.100.1")]
        self.assertEqual(statuses, [200] * 3 + [200, 200, 429, 429, 429] + [403, 403, 200])
        stats = wait_until(lambda: (lambda s: s if s["total_requests"] >= 11 else None)(gw.stats()), 3,
                           message="11 requests in /stats")
        self.assertEqual(stats["total_requests"], 11)
        self.assertEqual(stats["forwarded"], 6)
        self.assertEqual(stats["forwarded"], up.hits)
        self.assertEqual(stats["rate_limited"], 3)
        self.assertEqual(stats["blocked"], 2)
        self.assertEqual(stats["rejected"], 5)
        self.assertEqual(stats["rejected_by_reason"], {"rate_limited": 3, "ip_denied": 1, "ip_not_allowed": 1})
        self.assertEqual(stats["total_requests"], stats["forwarded"] + stats["rejected"])
        self.assertEqual(stats["region"], "eu-central-1")
        # Six distinct resolved clients (.1 .2 .3 .4 .66 and 203.0.113.9); the estimate is exact at this size.
        self.assertGreaterEqual(stats["active_clients"], 1)
        self.assertEqual(stats["active_clients"], 6)
        self.assertEqual(stats["routes"]["limited"]["status"], {"200": 2, "429": 3})
        text = gw.metrics()
        self.assertEqual(metric_value(text, 'obsgw_rate_limited_total{limit="stats-limit"}'), 3)
        self.assertEqual(metric_value(text, 'obsgw_rejections_total{reason="rate_limited"}'), 3)

    def test_fresh_gateway_has_zero_edge_figures(self):
        """Before any traffic: nothing limited or blocked, no active clients, no region."""
        up = EchoUpstream()
        self.addCleanup(up.stop)
        gw = Gateway.start(make_config({"echo": upstream_entry(up.url)}, [route("r", "echo", path_prefix="/")]))
        self.addCleanup(gw.stop)
        stats = gw.stats()
        self.assertEqual({k: stats[k] for k in ("total_requests", "forwarded", "rate_limited", "blocked",
                                                "active_clients", "region")},
                         {"total_requests": 0, "forwarded": 0, "rate_limited": 0, "blocked": 0, "active_clients": 0,
                          "region": None})
        self.assertNotIn("obsgw_rate_limited_total{", gw.metrics())


# ---------------------------------------------------------------------------------------------------------
# configuration checks


class TrafficConfigTest(unittest.TestCase):
    """gatewayd --check names mistakes in the new sections by their path."""

    def assert_problem(self, cfg, *fragments):
        code, _, err, _ = run_check(cfg)
        self.assertEqual(code, 2, err)
        for f in fragments:
            self.assertIn(f, err)

    def base(self, route_policies=(), **top):
        cfg = make_config({"echo": upstream_entry("http://127.0.0.1:9")},
                          [route("r", "echo", path_prefix="/", policies=list(route_policies))])
        cfg.update(top)
        return cfg

    def test_valid_config_passes(self):
        cfg = self.base([ip_rules(allow=["10.*", "::1", "2001:db8::/32"]),
                         rate_limit(limit("ok", 10, per="minute", burst=20),
                                    limit("hdr", 5, key="header", header="X-Tenant"),
                                    limit("bytes", 1e6, key="global", unit="bytes", per="day"))],
                        region="eu-west-1", client_ip={"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"]},
                        policies=[ip_rules(deny=["192.0.2.0/24"])])
        code, _, err, _ = run_check(cfg)
        self.assertEqual(code, 0, err)

    def test_bad_addresses(self):
        self.assert_problem(self.base([ip_rules(deny=["127.0.0.1/8", "10.*.1", "nonsense"])]),
                            "routes[0].policies[0].deny[0]", "did you mean 127.0.0.0/8",
                            "routes[0].policies[0].deny[1]", "routes[0].policies[0].deny[2]")
        self.assert_problem(self.base(client_ip={"trusted_proxies": ["::1*"]}), "client_ip.trusted_proxies[0]")
        self.assert_problem(self.base([ip_rules()]), 'give "allow", "deny" or both')

    def test_bad_limits(self):
        self.assert_problem(self.base([rate_limit(limit("a", 1, key="ip"))]), "routes[0].policies[0].limits[0].key")
        self.assert_problem(self.base([rate_limit(limit("a", 1, key="header"))]),
                            "routes[0].policies[0].limits[0].header")
        self.assert_problem(self.base([rate_limit(limit("a", 0))]), "routes[0].policies[0].limits[0].rate")
        self.assert_problem(self.base([rate_limit(limit("a", 1, per="fortnight"))]),
                            "routes[0].policies[0].limits[0].per")
        self.assert_problem(self.base([rate_limit(limit("a", 1, unit="packets"))]),
                            "routes[0].policies[0].limits[0].unit")

    def test_bad_region(self):
        self.assert_problem(self.base(region="x" * 65), "region: must be 1 to 64 visible characters")


if __name__ == "__main__":
    unittest.main()
