"""JWT authentication against a real OpenID Provider (oidc_provider.py: npm oidc-provider on 127.0.0.1): key
discovery over HTTPS, tenant resolution from claims, refusals and their challenges, the verified-token cache,
key rotation, an unreachable provider (while running and at cold start), token expiry and token sources.

Each class starts one provider of its own (the rotation, outage and cold-start tests change its state) and one
gatewayd; every process is stopped by its PID in the class cleanups."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import (LOCALHOST, Gateway, HttpConnection, free_port, make_ca_and_leaf, make_config, metric_value,
                     request, route, upstream_entry, wait_until)
from oidc_provider import AUDIENCE, OidcProvider, decode_jwt
from upstream import EchoUpstream

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HITS = 'obsgw_token_cache_lookups_total{cache="jwt",result="hit"}'
MISSES = 'obsgw_token_cache_lookups_total{cache="jwt",result="miss"}'
VERIFIED = "obsgw_jwt_verified_total"
PLAIN_CHALLENGE = 'Bearer realm="obsgw"'
INVALID_CHALLENGE = 'Bearer realm="obsgw", error="invalid_token", error_description="'


# ---------------------------------------------------------------------------------------------------------
# helpers


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def tampered(token, **claims):
    """The token with claims changed in its payload and the original signature kept."""
    header, payload, sig = token.split(".")
    body = json.loads(b64url_decode(payload))
    body.update(claims)
    return f"{header}.{b64url_json(body)}.{sig}"


class ForeignKey:
    """An RSA key the provider never published; signs RS256 JWTs with the openssl CLI."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="obsgw-foreign-")
        self.key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", self.key], check=True, capture_output=True, timeout=30)

    def sign(self, header, payload):
        signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True, timeout=30).stdout
        return f"{signing_input}.{b64url(sig)}"

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def provider_entry(op, **overrides):
    """A provider block for `op`: keys by discovery over HTTPS (or HTTP), the fixture's audience and typ."""
    p = {"issuer": op.issuer, "discovery": True, "audiences": [AUDIENCE], "token_type": "at+jwt",
         "algorithms": ["RS256"]}
    if op.ca_file:
        p["ca_file"] = op.ca_file
    else:
        p["allow_http"] = True
    p.update(overrides)
    return p


def jwt_policy(provider, **overrides):
    policy = {"type": "jwt", "providers": [provider]}
    policy.update(overrides)
    return policy


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


def unverifiable_token(issuer):
    """Well-formed, for `issuer`, under kid rsa-1, signed by no key anyone has."""
    now = int(time.time())
    return (f"{b64url_json({'alg': 'RS256', 'typ': 'at+jwt', 'kid': 'rsa-1'})}."
            f"{b64url_json({'iss': issuer, 'aud': AUDIENCE, 'sub': 'x', 'iat': now, 'exp': now + 600})}."
            f"{b64url(b'sig' * 86)}")


def key_fetches(metrics_text, source, result):
    """obsgw_key_fetches_total for one source label (matched exactly) and result."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("obsgw_key_fetches_total{") and f'source="{source}"' in line \
                and f'result="{result}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class OidcTestCase(unittest.TestCase):
    """Shared assertions on gatewayd's refusals."""

    gw = None

    def gateway_without_keys(self, provider):
        """A gatewayd with one jwt route for `provider` and an echo upstream, once it has logged that the provider's
        keys could not be fetched (and it serves none): (gateway, upstream, that log line)."""
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config({"echo": upstream_entry(up.url)},
                          [route("push", "echo", path_prefix="/push", policies=[jwt_policy(provider)])])
        self.gw = gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        line = gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys could not be fetched", 5)
        self.assertEqual(line.get("serving"), "nothing yet", line)
        return gw, up, line

    def assertRefused(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"], code, r)
        self.assertIsInstance(body.get("message"), str, r)
        self.assertEqual(body.get("request_id"), r.header("X-Request-Id"), r)
        self.assertRegex(body["request_id"], HEX32)
        return body

    def assertInvalidToken(self, r, code):
        """401 with the RFC 6750 invalid_token challenge and the JSON body naming `code`."""
        self.assertRefused(r, 401, code)
        challenges = r.header_all("WWW-Authenticate")
        self.assertEqual(len(challenges), 1, r)
        self.assertTrue(challenges[0].startswith(INVALID_CHALLENGE), challenges)
        self.assertTrue(challenges[0].endswith('"'), challenges)

    def metrics(self):
        return self.gw.metrics()

    def counter(self, series):
        return metric_value(self.metrics(), series)


# ---------------------------------------------------------------------------------------------------------
# one provider over HTTPS, many routes


class OidcGatewayTest(OidcTestCase):
    """Discovery over HTTPS with the fixture's CA; tenants, refusals, the cache and token sources."""

    @classmethod
    def setUpClass(cls):
        cls.op = OidcProvider(tls=True)
        cls.addClassCleanup(cls.op.stop)
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cls.foreign = ForeignKey()
        cls.addClassCleanup(cls.foreign.cleanup)
        cls.tokens = []  # every token text used here: none may show up in gatewayd's output

        prov = provider_entry(cls.op)
        jwt = jwt_policy(prov)
        tenant_claim = {"type": "tenant", "claim": "tenant_id"}
        groups_pick = {"type": "tenant", "claim": "groups", "strip_prefix": "obs-tenant-", "from_header": True}
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("push", "echo", path_prefix="/push", policies=[jwt, tenant_claim]),
             route("pick", "echo", path_prefix="/pick",
                   policies=[jwt, {"type": "tenant", "claim": "tenant_id", "from_header": True}]),
             route("multi", "echo", path_prefix="/multi", policies=[jwt, groups_pick]),
             route("query", "echo", path_prefix="/query", policies=[jwt, dict(groups_pick, federation=True)]),
             route("aud", "echo", path_prefix="/aud",
                   policies=[jwt_policy(provider_entry(cls.op, audiences=["urn:other"]))]),
             route("rules", "echo", path_prefix="/rules",
                   policies=[jwt_policy(provider_entry(cls.op, rules=[
                       {"claim": "scope", "contains": ["logs:write"]},
                       {"claim": "tenant_id", "one_of": ["tenant-a"]}]))]),
             route("admin", "echo", path_prefix="/admin",
                   policies=[jwt, {"type": "authorize", "scopes": ["admin"]}]),
             route("staff", "echo", path_prefix="/staff",
                   policies=[jwt, {"type": "authorize", "groups": ["staff"]}]),
             route("basic", "echo", path_prefix="/basic",
                   policies=[jwt_policy(prov, token_sources=["basic"]), tenant_claim]),
             route("q", "echo", path_prefix="/q", policies=[jwt_policy(prov, token_sources=["query:access_token"])]),
             route("hdr", "echo", path_prefix="/hdr",
                   policies=[jwt_policy(prov, token_sources=["header:X-Token", "cookie:session"])]),
             route("fwd", "echo", path_prefix="/fwd", policies=[jwt_policy(prov, forward_token=True)]),
             route("typ", "echo", path_prefix="/typ",
                   policies=[jwt_policy(provider_entry(cls.op, token_type="JWT"))]),
             route("req", "echo", path_prefix="/req",
                   policies=[jwt_policy(provider_entry(cls.op, required_claims=["email"]))])])
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port
        cls.gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys loaded", 10)

        cls.token_a = cls.token("agent-a")
        cls.token_b = cls.token("agent-b")
        cls.token_multi = cls.token("agent-multi")

    @classmethod
    def token(cls, client, **kw):
        t = cls.op.token(client, **kw)
        cls.tokens.append(t)
        return t

    @classmethod
    def remember(cls, token):
        cls.tokens.append(token)
        return token

    def setUp(self):
        self.up.reset()

    def send(self, target, token=None, headers=(), method="GET", body=None):
        h = (bearer(token) if token is not None else []) + list(headers)
        return request(self.port, method, target, h, body)

    def only_upstream_request(self):
        [rec] = self.up.snapshot()
        return rec

    # --- 1. the happy path ---

    def test_agent_a_reaches_upstream_as_tenant_a(self):
        """agent-a's client-credentials token passes; the upstream sees tenant-a, agent-a as the user, no
        Authorization header, and the identity headers a client tried to send are replaced."""
        body = b"push payload " * 100
        r = self.send("/push/api/v1/push", self.token_a, method="POST", body=body,
                      headers=[("X-Auth-Request-User", "mallory"), ("X-Auth-Request-Groups", "admins")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Route"), "push")
        seen = r.json()
        self.assertEqual((seen["method"], seen["target"], seen["body_len"]), ("POST", "/push/api/v1/push", len(body)))
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-a"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["agent-a"])
        self.assertEqual(rec.header_all("X-Auth-Request-Groups"), [])  # agent-a has no groups; the spoof is gone
        self.assertEqual(rec.header_all("Authorization"), [])
        access = self.gw.wait_access(lambda l: l.get("request_id") == r.header("X-Request-Id"))
        self.assertEqual((access["status"], access.get("tenant")), (200, "tenant-a"))

    def test_client_tenant_header_is_replaced_by_the_claim(self):
        """With agent-a's token, a client-sent X-Scope-OrgID: tenant-b reaches the upstream as tenant-a."""
        for name in ("X-Scope-OrgID", "x-scope-orgid"):
            self.up.reset()
            r = self.send("/push/x", self.token_a, headers=[(name, "tenant-b")])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.only_upstream_request().header_all("X-Scope-OrgID"), ["tenant-a"])

    # --- 2. tenants ---

    def test_agent_b_lands_under_tenant_b(self):
        r = self.send("/push/x", self.token_b, headers=[("X-Scope-OrgID", "tenant-a")])
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-b"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["agent-b"])

    def test_from_header_refuses_a_foreign_tenant(self):
        """On a from_header route agent-a may name tenant-a (or nothing) but not tenant-b."""
        r = self.send("/pick/x", self.token_a, headers=[("X-Scope-OrgID", "tenant-b")])
        self.assertRefused(r, 403, "tenant_not_allowed")
        self.assertEqual(self.up.hits, 0)
        r = self.send("/pick/x", self.token_a, headers=[("X-Scope-OrgID", "tenant-a")])
        self.assertEqual(r.status, 200, r)
        r = self.send("/pick/x", self.token_a)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([q.header_all("X-Scope-OrgID") for q in self.up.snapshot()], [["tenant-a"], ["tenant-a"]])

    def test_groups_with_prefix_choose_the_tenant(self):
        """agent-multi's groups obs-tenant-acme/-globex allow acme and globex; "staff" has no prefix and is no
        tenant; without a header the choice is ambiguous."""
        for tenant in ("acme", "globex"):
            self.up.reset()
            r = self.send("/multi/x", self.token_multi, headers=[("X-Scope-OrgID", tenant)])
            self.assertEqual(r.status, 200, r)
            rec = self.only_upstream_request()
            self.assertEqual(rec.header_all("X-Scope-OrgID"), [tenant])
            self.assertEqual(rec.header_all("X-Auth-Request-Groups"), ["obs-tenant-acme,obs-tenant-globex,staff"])
        self.up.reset()
        for name in ("staff", "obs-tenant-acme"):
            self.assertRefused(self.send("/multi/x", self.token_multi, headers=[("X-Scope-OrgID", name)]),
                               403, "tenant_not_allowed")
        self.assertRefused(self.send("/multi/x", self.token_multi), 403, "ambiguous_tenant")
        self.assertRefused(self.send("/multi/x", self.token_multi, headers=[("X-Scope-OrgID", "a b")]),
                           400, "invalid_tenant")
        self.assertEqual(self.up.hits, 0)

    def test_federation_only_where_configured(self):
        """acme|globex goes through on the federated route and is refused (400) on the single-tenant one."""
        r = self.send("/query/x", self.token_multi, headers=[("X-Scope-OrgID", "acme|globex")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.only_upstream_request().header_all("X-Scope-OrgID"), ["acme|globex"])
        self.up.reset()
        self.assertRefused(self.send("/multi/x", self.token_multi, headers=[("X-Scope-OrgID", "acme|globex")]),
                           400, "invalid_tenant")
        self.assertRefused(self.send("/query/x", self.token_multi, headers=[("X-Scope-OrgID", "acme|staff")]),
                           403, "tenant_not_allowed")
        self.assertEqual(self.up.hits, 0)

    # --- 3. refusals ---

    def test_no_token_gets_the_bare_challenge(self):
        r = self.send("/push/x")
        self.assertRefused(r, 401, "missing_token")
        self.assertEqual(r.header_all("WWW-Authenticate"), [PLAIN_CHALLENGE])
        self.assertEqual(self.up.hits, 0)

    def test_garbage_tokens_are_malformed(self):
        for garbage in ("not-a-jwt", "a.b.c", "e30.e30.", b64url_json({"alg": "RS256"}) + ".%%%.x"):
            with self.subTest(token=garbage):
                self.assertInvalidToken(self.send("/push/x", self.remember(garbage)), "malformed_token")
        self.assertEqual(self.up.hits, 0)

    def test_tampered_payload_has_a_bad_signature(self):
        """A real token whose payload was edited (tenant_id, sub) keeps its signature: bad_signature, counted in
        obsgw_rejections_total."""
        series = 'obsgw_rejections_total{reason="bad_signature"}'
        before = self.counter(series)
        forged = self.remember(tampered(self.token_a, tenant_id="tenant-b", sub="agent-b"))
        self.assertEqual(decode_jwt(forged)[1]["tenant_id"], "tenant-b")
        self.assertInvalidToken(self.send("/push/x", forged), "bad_signature")
        self.assertEqual(self.up.hits, 0)
        self.assertEqual(self.counter(series), before + 1)

    def test_token_type_and_required_claims(self):
        """The provider's tokens are at+jwt and carry no email: refused where JWT or an email is required."""
        self.assertInvalidToken(self.send("/typ/x", self.token_a), "wrong_token_type")
        self.assertInvalidToken(self.send("/req/x", self.token_a), "missing_claim")
        self.assertEqual(self.up.hits, 0)

    def test_identity_without_tenant_claim(self):
        """agent-multi has no tenant_id: the push route (tenant from tenant_id) refuses it."""
        self.assertRefused(self.send("/push/x", self.token_multi), 403, "no_tenant")
        self.assertEqual(self.up.hits, 0)

    def test_token_signed_by_another_key(self):
        """Claims copied from a real token, signed by a key the provider never published under its kid:
        bad_signature; under an unknown kid: unknown_key (and no refresh storm: min_refresh_interval_s is 30)."""
        header, claims = decode_jwt(self.token_a)
        forged = self.remember(self.foreign.sign(header, claims))
        self.assertInvalidToken(self.send("/push/x", forged), "bad_signature")

        source = f"{self.op.issuer} (discovery)"
        before = key_fetches(self.metrics(), source, "success") + key_fetches(self.metrics(), source, "failure")
        for i in range(3):
            t = self.remember(self.foreign.sign(dict(header, kid=f"nope-{i}"), claims))
            self.assertInvalidToken(self.send("/push/x", t), "unknown_key")
        after = key_fetches(self.metrics(), source, "success") + key_fetches(self.metrics(), source, "failure")
        self.assertLessEqual(after - before, 1, "unknown kids must not trigger a key fetch each")
        self.assertEqual(self.up.hits, 0)

    def test_algorithm_none_and_hmac_are_refused(self):
        """alg none (with or without a signature part) and HS256 over an RSA issuer's claims are refused."""
        header, claims = decode_jwt(self.token_a)
        none = f"{b64url_json(dict(header, alg='none'))}.{b64url_json(claims)}"
        self.assertInvalidToken(self.send("/push/x", self.remember(none + ".")), "malformed_token")
        self.assertInvalidToken(self.send("/push/x", self.remember(none + ".AAAA")), "disallowed_algorithm")
        hs = self.remember(f"{b64url_json(dict(header, alg='HS256'))}.{b64url_json(claims)}.{b64url(b'x' * 32)}")
        self.assertInvalidToken(self.send("/push/x", hs), "disallowed_algorithm")
        self.assertEqual(self.up.hits, 0)

    def test_unknown_issuer(self):
        header, claims = decode_jwt(self.token_a)
        t = self.remember(self.foreign.sign(header, dict(claims, iss="https://evil.example")))
        self.assertInvalidToken(self.send("/push/x", t), "unknown_issuer")

    def test_wrong_audience(self):
        self.assertInvalidToken(self.send("/aud/x", self.token_a), "wrong_audience")
        self.assertEqual(self.up.hits, 0)

    def test_claim_rules(self):
        self.assertEqual(self.send("/rules/x", self.token_a).status, 200)
        self.assertInvalidToken(self.send("/rules/x", self.token_b), "claim_rule_failed")
        only_read = self.token("agent-a", scope="logs:read")
        self.assertInvalidToken(self.send("/rules/x", only_read), "claim_rule_failed")
        self.assertEqual(self.up.hits, 1)

    def test_authorize_scope_and_groups(self):
        r = self.send("/admin/x", self.token_a)
        self.assertRefused(r, 403, "insufficient_scope")
        [challenge] = r.header_all("WWW-Authenticate")
        self.assertIn('error="insufficient_scope"', challenge)
        self.assertIn('scope="admin"', challenge)
        self.assertRefused(self.send("/staff/x", self.token_a), 403, "forbidden")
        self.assertEqual(self.up.hits, 0)
        self.assertEqual(self.send("/staff/x", self.token_multi).status, 200)

    def test_tokens_never_logged(self):
        """After accepted and refused requests over every source, no token (nor its signature) is in gatewayd's
        stdout or stderr; the access log has the request but not the query token."""
        t = self.token("agent-a")
        forged = self.remember(tampered(t, sub="x"))
        basic = base64.b64encode(f"agent:{t}".encode()).decode()
        rids = []
        for target, headers in (("/push/x", bearer(t)), ("/push/x", bearer(forged)), ("/aud/x", bearer(t)),
                                ("/basic/x", [("Authorization", f"Basic {basic}")]),
                                (f"/q/x?access_token={t}", []), (f"/q/x?access_token={forged}", [])):
            r = request(self.port, "GET", target, headers)
            self.assertIn(r.status, (200, 401), r)
            rids.append(r.header("X-Request-Id"))
        for rid in rids:
            self.gw.wait_access(lambda l: l.get("request_id") == rid)
        self.assert_no_token_in_output()

    def assert_no_token_in_output(self):
        with self.gw._cond:
            text = "\n".join(json.dumps(l) for l in self.gw.lines) + "\n" + "\n".join(self.gw.stderr_lines)
        for token in self.tokens:
            self.assertNotIn(token, text)
            sig = token.rsplit(".", 1)[-1]
            if len(sig) >= 16:
                self.assertNotIn(sig, text)

    # --- 4. cache ---

    def test_cache_verifies_once(self):
        """N requests with one token on one connection (one io thread): 1 verification, N-1 cache hits."""
        t = self.token("agent-b")
        n = 8
        hits, misses, verified = self.counter(HITS), self.counter(MISSES), self.counter(VERIFIED)
        with HttpConnection(self.port) as c:
            for _ in range(n):
                c.request("GET", "/push/cached", bearer(t))
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
        m = self.metrics()
        self.assertEqual(metric_value(m, HITS) - hits, n - 1)
        self.assertEqual(metric_value(m, MISSES) - misses, 1)
        self.assertEqual(metric_value(m, VERIFIED) - verified, 1)
        self.assertEqual([q.header("X-Scope-OrgID") for q in self.up.snapshot()], ["tenant-b"] * n)

    def test_cached_token_still_checked_per_route(self):
        """A token cached by one route's policy does not pass another route's stricter policy."""
        t = self.token("agent-b")
        with HttpConnection(self.port) as c:
            for target, status in (("/push/x", 200), ("/push/x", 200), ("/rules/x", 401), ("/aud/x", 401)):
                c.request("GET", target, bearer(t))
                r = c.read_response()
                self.assertEqual(r.status, status, (target, r))

    # --- 8. token sources ---

    def test_basic_credentials(self):
        """Basic with the token as password (any user) passes where "basic" is a source; on a bearer-only route
        the same credentials count as no token."""
        creds = base64.b64encode(f"whoever:{self.token_a}".encode()).decode()
        r = self.send("/basic/x", headers=[("Authorization", f"Basic {creds}")])
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("Authorization"), [])
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-a"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["agent-a"])

        r = self.send("/push/x", headers=[("Authorization", f"Basic {creds}")])
        self.assertRefused(r, 401, "missing_token")
        self.assertEqual(r.header_all("WWW-Authenticate"), [PLAIN_CHALLENGE])

        bad = base64.b64encode(b"whoever:not-a-jwt").decode()
        r = self.send("/basic/x", headers=[("Authorization", f"Basic {bad}")])
        self.assertInvalidToken_basic(r, "malformed_token")
        r = self.send("/basic/x", headers=[("Authorization", "Basic !!!")])
        self.assertInvalidToken_basic(r, "malformed_credentials")
        self.assertEqual(self.up.hits, 1)

    def assertInvalidToken_basic(self, r, code):
        self.assertRefused(r, 401, code)
        challenges = r.header_all("WWW-Authenticate")
        self.assertTrue(challenges[0].startswith(INVALID_CHALLENGE), challenges)
        self.assertIn('Basic realm="obsgw", charset="UTF-8"', challenges)

    def test_query_token_is_removed_from_the_forwarded_query(self):
        r = self.send(f"/q/x?a=1&access_token={self.token_a}&b=two")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["target"], "/q/x?a=1&b=two")
        self.assertEqual(self.only_upstream_request().header_all("X-Auth-Request-User"), ["agent-a"])
        r = self.send(f"/q/x?access_token={self.token_a}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["target"], "/q/x")
        r = self.send("/q/x?a=1", self.token_a)  # a bearer header is not a source on this route
        self.assertRefused(r, 401, "missing_token")

    def test_header_and_cookie_sources(self):
        """header:X-Token (a "Bearer " prefix tolerated) and cookie:session; the credential is removed from what
        the upstream gets, other cookies are kept."""
        r = self.send("/hdr/x", headers=[("X-Token", f"Bearer {self.token_a}")])
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("X-Token"), [])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["agent-a"])
        self.up.reset()
        r = self.send("/hdr/x", headers=[("Cookie", f"theme=dark; session={self.token_b}; lang=en")])
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("Cookie"), ["theme=dark; lang=en"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["agent-b"])
        self.assertRefused(self.send("/hdr/x", self.token_a), 401, "missing_token")
        self.assertRefused(self.send("/hdr/x", headers=[("Cookie", f"session={self.token_a}; session=x")]),
                           401, "malformed_credentials")

    def test_forward_token_keeps_the_credential(self):
        r = self.send("/fwd/x", self.token_a)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.only_upstream_request().header_all("Authorization"), [f"Bearer {self.token_a}"])

    @classmethod
    def tearDownClass(cls):
        # the same check once more over everything the class did (tests run in name order)
        leaked = []
        with cls.gw._cond:
            text = "\n".join(json.dumps(l) for l in cls.gw.lines) + "\n" + "\n".join(cls.gw.stderr_lines)
        for token in cls.tokens:
            if token in text:
                leaked.append(token[:20] + "...")
        if leaked:
            raise AssertionError(f"tokens appeared in gatewayd's output: {leaked}")


# ---------------------------------------------------------------------------------------------------------
# 5. key rotation


class CacheControlTest(unittest.TestCase):
    """A JWKS endpoint's Cache-Control max-age sets the refresh period, within min/max_refresh_interval_s; without
    one, refresh_interval_s applies. Four sources on one plain-HTTP server (allow_http), counted per path."""

    @staticmethod
    def ec_jwks():
        """A JWK Set with one P-256 public key, made with the openssl CLI (the standard library has no EC)."""
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "k.pem")
            subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
            der = subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-outform", "DER"], check=True,
                                 capture_output=True).stdout
        point = der[-65:]  # the SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y
        assert point[0] == 4, der.hex()
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        return json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256", "use": "sig",
                                     "x": b64(point[1:33]), "y": b64(point[33:])}]}).encode()

    def test_max_age_sets_the_refresh_period_within_bounds(self):
        """max-age=1 → about every second; max-age=100000 with max_refresh_interval_s 2 → every 2 s; no-store →
        min_refresh_interval_s (1 s); no Cache-Control → refresh_interval_s (300 s: one fetch only). Counted over
        ~4.5 s after the first fetch of each."""
        import http.server
        body = self.ec_jwks()
        cache_control = {"/a": "max-age=1", "/b": "public, max-age=100000", "/c": "no-store", "/d": None}
        fetches = {path: [] for path in cache_control}
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with lock:
                    fetches[self.path].append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if cache_control[self.path]:
                    self.send_header("Cache-Control", cache_control[self.path])
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((LOCALHOST, 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        up = EchoUpstream()
        self.addCleanup(up.stop)
        routes = []
        for path in cache_control:
            provider = {"issuer": f"https://cc{path[1:]}.example", "jwks_uri": f"http://{LOCALHOST}:{server.server_port}{path}",
                        "allow_http": True, "audiences": [AUDIENCE], "refresh_interval_s": 300,
                        "min_refresh_interval_s": 1, "max_refresh_interval_s": 2 if path == "/b" else 3600}
            routes.append(route(path[1:], "echo", path_prefix=path, policies=[jwt_policy(provider)]))
        gw = Gateway.start(make_config({"echo": upstream_entry(up.url)}, routes))
        self.addCleanup(gw.stop)
        wait_until(lambda: all(fetches[p] for p in fetches), timeout=5, interval=0.02, message="every first fetch")
        time.sleep(4.5 + 0.3)
        with lock:  # each source over the same 4.5 s from its own first fetch
            got = {p: [round(t - ts[0], 2) for t in ts if t - ts[0] <= 4.5] for p, ts in fetches.items()}
        gaps = {p: [b - a for a, b in zip(ts, ts[1:])] for p, ts in got.items()}
        print(f"\n[key fetches, s after the first] {got}", file=sys.stderr)
        for p in ("/a", "/c"):  # every second
            self.assertTrue(4 <= len(got[p]) <= 6, got)
            self.assertTrue(all(0.9 <= g <= 1.6 for g in gaps[p]), got)
        self.assertTrue(2 <= len(got["/b"]) <= 3, got)  # clamped to 2 s
        self.assertTrue(all(1.9 <= g <= 2.6 for g in gaps["/b"]), got)
        self.assertEqual(len(got["/d"]), 1, got)


class KeyRotationTest(OidcTestCase):
    """Two fetchers for one provider: /early (discovery, refresh every 300 s, early refresh on an unknown kid
    without delay) and /periodic (jwks_uri, refreshed every second)."""

    @classmethod
    def setUpClass(cls):
        cls.op = OidcProvider(tls=True)
        cls.addClassCleanup(cls.op.stop)
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        early = provider_entry(cls.op, refresh_interval_s=300, min_refresh_interval_s=1)  # the least allowed
        periodic = provider_entry(cls.op, discovery=False, jwks_uri=cls.op.jwks_uri, refresh_interval_s=1,
                                  min_refresh_interval_s=1, max_refresh_interval_s=1)
        cfg = make_config({"echo": upstream_entry(cls.up.url)},
                          [route("early", "echo", path_prefix="/early", policies=[jwt_policy(early)]),
                           route("periodic", "echo", path_prefix="/periodic", policies=[jwt_policy(periodic)])])
        cls.gw = Gateway.start(cfg)
        cls.addClassCleanup(cls.gw.stop)
        cls.port = cls.gw.port
        cls.early_source = f"{cls.op.issuer} (discovery)"
        cls.periodic_source = cls.op.jwks_uri

    def keys_loaded(self, source, kids, start=0, timeout=5.0):
        return self.gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys loaded"
                                    and l.get("source") == source and l.get("kids") == kids, timeout, start)

    def test_rotation(self):
        self.keys_loaded(self.early_source, "rsa-1", timeout=10)
        self.keys_loaded(self.periodic_source, "rsa-1", timeout=10)
        t1 = self.op.token("agent-a")
        self.assertEqual(decode_jwt(t1)[0]["kid"], "rsa-1")
        periodic = HttpConnection(self.port)  # one connection: one io thread, one token cache
        self.addCleanup(periodic.close)

        def on_periodic(token):
            periodic.request("GET", "/periodic/x", bearer(token))
            return periodic.read_response()

        self.assertEqual(request(self.port, "GET", "/early/x", bearer(t1)).status, 200)
        self.assertEqual(on_periodic(t1).status, 200)

        # --- a new key signs, the old one stays published: the first token under the new kid makes /early
        # fetch the key set at once (its regular refresh is 300 s away)
        self.assertEqual(self.op.rotate(), {"kid": "rsa-2", "kids": ["rsa-2", "rsa-1"]})
        t2 = self.op.token("agent-a")
        self.assertEqual(decode_jwt(t2)[0]["kid"], "rsa-2")
        fetched = key_fetches(self.metrics(), self.early_source, "success")
        start = time.monotonic()
        r = request(self.port, "GET", "/early/x", bearer(t2))
        self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertEqual(key_fetches(self.metrics(), self.early_source, "success"), fetched + 1)
        line = self.keys_loaded(self.early_source, "rsa-2,rsa-1")
        self.assertEqual(line.get("generation"), 2, line)
        # t1 was cached under generation 1: verified again (still good, rsa-1 is still published)
        verified = self.counter(VERIFIED)
        self.assertEqual(request(self.port, "GET", "/early/x", bearer(t1)).status, 200)
        self.assertEqual(self.counter(VERIFIED), verified + 1)

        self.keys_loaded(self.periodic_source, "rsa-2,rsa-1")
        for _ in range(2):  # accepted, then from this thread's cache
            self.assertEqual(on_periodic(t2).status, 200)
            self.assertEqual(on_periodic(t1).status, 200)
        # refreshes that bring the same keys leave the cache alone
        fetched = key_fetches(self.metrics(), self.periodic_source, "success")
        wait_until(lambda: key_fetches(self.metrics(), self.periodic_source, "success") >= fetched + 1,
                   timeout=3, interval=0.05, message="a periodic refresh")
        hits = self.counter(HITS)
        self.assertEqual(on_periodic(t1).status, 200)
        self.assertEqual(self.counter(HITS), hits + 1, "t1 should be a cache hit on /periodic now")

        # --- rotate and drop every older key: once /periodic has refreshed, tokens under removed kids are
        # refused even though this thread's cache holds them as verified
        start_log = self.gw.log_count()
        self.assertEqual(self.op.rotate(drop=True), {"kid": "rsa-3", "kids": ["rsa-3"]})
        self.keys_loaded(self.periodic_source, "rsa-3", start=start_log, timeout=5)
        self.assertInvalidToken(on_periodic(t1), "unknown_key")
        self.assertInvalidToken(on_periodic(t2), "unknown_key")
        t3 = self.op.token("agent-a")
        self.assertEqual(decode_jwt(t3)[0]["kid"], "rsa-3")
        self.assertEqual(on_periodic(t3).status, 200)

        # /early has not refreshed since (300 s): t3's unknown kid makes it fetch, and from then on its cached
        # t1 and t2 are refused as well
        self.assertEqual(request(self.port, "GET", "/early/x", bearer(t3)).status, 200)
        self.keys_loaded(self.early_source, "rsa-3", start=start_log)
        for t in (t1, t2):
            self.assertInvalidToken(request(self.port, "GET", "/early/x", bearer(t)), "unknown_key")


class ConcurrentRotationTest(OidcTestCase):
    def test_concurrent_requests_with_a_new_kid_wait_for_the_refresh(self):
        """After a rotation, several clients arrive at once with tokens under the new kid: one early refresh
        brings the key, and every one of them is accepted (those that came while the refresh was in flight
        wait for it rather than being refused unknown_key). min_refresh_interval_s is 1, as in production
        settings that are above 0."""
        op = OidcProvider(tls=True)
        self.addCleanup(op.stop)
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config({"echo": upstream_entry(up.url)},
                          [route("push", "echo", path_prefix="/push",
                                 policies=[jwt_policy(provider_entry(op, min_refresh_interval_s=1))])])
        started = time.monotonic()
        self.gw = gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys loaded", 10)
        self.assertEqual(op.rotate()["kid"], "rsa-2")
        tokens = [op.token("agent-a") for _ in range(12)]  # distinct tokens: no cache help
        time.sleep(max(0.0, started + 1.2 - time.monotonic()))  # an early refresh is allowed from here on

        barrier = threading.Barrier(len(tokens))
        results = [None] * len(tokens)

        def client(i):
            with HttpConnection(gw.port) as c:
                barrier.wait(5)
                c.request("GET", "/push/x", bearer(tokens[i]))
                r = c.read_response()
                results[i] = (r.status, None if r.status == 200 else r.json().get("error"))

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(tokens))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(results, [(200, None)] * len(tokens))
        fetches = key_fetches(self.metrics(), f"{op.issuer} (discovery)", "success")
        self.assertLessEqual(fetches, 3, "one early refresh (plus the first fetch), not one per request")


# ---------------------------------------------------------------------------------------------------------
# 6. an unreachable provider


class ProviderOutageTest(OidcTestCase):
    def test_last_good_keys_serve_while_the_provider_is_down(self):
        op = OidcProvider(tls=True)
        self.addCleanup(op.stop)
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config({"echo": upstream_entry(up.url)},
                          [route("push", "echo", path_prefix="/push",
                                 policies=[jwt_policy(provider_entry(op, refresh_interval_s=1,
                                                                     max_refresh_interval_s=1,
                                                                     min_refresh_interval_s=1)),
                                           {"type": "tenant", "claim": "tenant_id"}])])
        self.gw = gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys loaded", 10)
        seen, unseen = op.token("agent-a"), op.token("agent-b")
        self.assertEqual(request(gw.port, "GET", "/push/x", bearer(seen)).status, 200)

        start = gw.log_count()
        failures = key_fetches(self.metrics(), f"{op.issuer} (discovery)", "failure")
        op.stop()
        line = gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys could not be fetched", 8, start)
        self.assertEqual(line.get("serving"), "last good keys", line)
        self.assertGreater(key_fetches(self.metrics(), f"{op.issuer} (discovery)", "failure"), failures)
        for token, tenant in ((seen, "tenant-a"), (unseen, "tenant-b")):
            r = request(gw.port, "GET", "/push/x", bearer(token))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(up.snapshot()[-1].header("X-Scope-OrgID"), tenant)


class KeyFetchTlsTest(OidcTestCase):
    """Key sets come over HTTPS with the certificate verified: a provider whose certificate the gateway does not
    trust, or whose certificate names another host, serves no keys; requests get 503 identity_provider_unavailable
    after cold_start_wait_ms, and the failure is logged and counted."""

    def refused(self, provider, expect_in_error):
        provider.update({"cold_start_wait_ms": 500, "fetch_timeout_ms": 2000, "refresh_interval_s": 300})
        gw, up, line = self.gateway_without_keys(provider)
        self.assertIn(expect_in_error, line.get("error", "").lower(), line)
        token = unverifiable_token(provider["issuer"])
        self.assertRefused(request(gw.port, "GET", "/push/x", bearer(token)), 503, "identity_provider_unavailable")
        self.assertEqual(up.hits, 0)
        self.assertGreaterEqual(key_fetches(gw.metrics(), line["source"], "failure"), 1)
        return line

    def test_certificate_from_an_untrusted_ca_is_refused(self):
        """The real provider over TLS, but ca_file names another CA."""
        op = OidcProvider(tls=True)
        self.addCleanup(op.stop)
        other = tempfile.mkdtemp(prefix="obsgw-other-ca-")
        self.addCleanup(shutil.rmtree, other, True)
        provider = provider_entry(op, ca_file=make_ca_and_leaf(other)["ca"])
        self.refused(provider, "certificate")

    def test_certificate_for_another_host_is_refused(self):
        """A trusted CA, but the certificate is for other.example while the issuer is https://127.0.0.1:port."""
        import http.server
        import ssl
        d = tempfile.mkdtemp(prefix="obsgw-wrong-name-")
        self.addCleanup(shutil.rmtree, d, True)
        certs = make_ca_and_leaf(d, names=("other.example",), ips=())
        hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append(self.path)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((LOCALHOST, 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["cert"], certs["key"])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        issuer = f"https://{LOCALHOST}:{server.server_port}"
        provider = {"issuer": issuer, "discovery": True, "audiences": [AUDIENCE], "ca_file": certs["ca"]}
        self.refused(provider, "certificate")
        self.assertEqual(hits, [], "no request may be sent over a connection to the wrong host")


class ColdStartTest(OidcTestCase):
    def test_cold_start_503_then_provider_appears(self):
        """Nothing listens at the issuer: after cold_start_wait_ms a request gets 503 with Retry-After; once a
        provider starts on that port the keys load and requests pass."""
        port = free_port()
        issuer = f"http://{LOCALHOST}:{port}"
        prov = {"issuer": issuer, "discovery": True, "allow_http": True, "audiences": [AUDIENCE],
                "token_type": "at+jwt", "refresh_interval_s": 1, "cold_start_wait_ms": 500, "fetch_timeout_ms": 1000}
        gw, up, _ = self.gateway_without_keys(prov)
        # well-formed but from no key anyone has: the gateway cannot even look for the kid yet
        unverifiable = unverifiable_token(issuer)
        start = time.monotonic()
        r = request(gw.port, "GET", "/push/x", bearer(unverifiable))
        elapsed = time.monotonic() - start
        self.assertRefused(r, 503, "identity_provider_unavailable")
        self.assertRegex(r.header("Retry-After") or "", r"^\d+$", r)
        self.assertGreaterEqual(elapsed, 0.45)
        self.assertLess(elapsed, 2.0)
        self.assertEqual(up.hits, 0)

        op = OidcProvider(port=port)
        self.addCleanup(op.stop)
        self.assertEqual(op.issuer, issuer)
        token = op.token("agent-a")
        wait_until(lambda: request(gw.port, "GET", "/push/x", bearer(token)).status == 200, timeout=6,
                   interval=0.1, message="a request to pass once the provider is up")
        gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys loaded", 1)
        self.assertInvalidToken(request(gw.port, "GET", "/push/x", bearer(unverifiable)), "bad_signature")


# ---------------------------------------------------------------------------------------------------------
# 7. expiry


class ExpiryTest(OidcTestCase):
    def test_cached_token_expires(self):
        """A 2 s token with leeway 0: accepted (and cached), then 401 token_expired once past exp, on the same
        connection whose thread cached it."""
        op = OidcProvider(tls=True, token_ttl=2)
        self.addCleanup(op.stop)
        up = EchoUpstream()
        self.addCleanup(up.stop)
        cfg = make_config({"echo": upstream_entry(up.url)},
                          [route("push", "echo", path_prefix="/push",
                                 policies=[jwt_policy(provider_entry(op, leeway_s=0))])])
        self.gw = gw = Gateway.start(cfg)
        self.addCleanup(gw.stop)
        gw.wait_for_log(lambda l: l.get("msg") == "identity provider keys loaded", 10)
        token = op.token("agent-a")
        exp = decode_jwt(token)[1]["exp"]
        self.assertEqual(exp - decode_jwt(token)[1]["iat"], 2)

        with HttpConnection(gw.port) as c:
            def send():
                c.request("GET", "/push/x", bearer(token))
                return c.read_response()

            hits = self.counter(HITS)
            for _ in range(2):
                r = send()
                self.assertEqual(r.status, 200, r)
            self.assertLess(time.time(), exp + 1)
            self.assertEqual(self.counter(HITS), hits + 1)

            def refused():
                r = send()
                return r if r.status != 200 else None

            r = wait_until(refused, timeout=6, interval=0.2, message="the token to expire")
            # RFC 7519 4.1.4: not accepted on or after exp (the gateway counts whole seconds).
            self.assertGreaterEqual(time.time(), exp - 0.05, "refused before exp")
            self.assertInvalidToken(r, "token_expired")


if __name__ == "__main__":
    unittest.main()
