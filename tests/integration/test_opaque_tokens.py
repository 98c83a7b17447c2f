"""Opaque access tokens against a real OpenID Provider (oidc_provider.py: npm oidc-provider on 127.0.0.1 over
HTTPS): RFC 7662 introspection and OIDC userinfo through gatewayd to an echo upstream.

What the provider really does, and so what is asserted here:
- resource=urn:opaque gives an opaque client_credentials token; its introspection answer has active, client_id,
  aud urn:opaque, iss, exp, scope, token_type Bearer and the extra claims tenant_id/groups, but no `sub`
  (oidc-provider names a subject only for tokens with a user). gatewayd then takes the client id as the subject,
  so X-Auth-Request-User carries it, as it would for the same client's JWT.
- JWTs cannot be introspected (400 unsupported_token_type: gatewayd refuses the token, 401); refresh tokens are
  introspected as active without a token_type (gatewayd refuses them: not an access token); userinfo accepts only user access tokens that are
  bound to no resource (401 invalid_token for client_credentials tokens, JWT or opaque).
- Users log in through gateway-web (authorization_code + PKCE, the dev login form); /me answers sub and tenant_id.

Cache assertions use one keep-alive connection: answers are cached per io thread, and a connection stays on its
thread. Every process is stopped by its PID in the class cleanups."""

import json
import os
import re
import secrets
import shutil
import tempfile
import time
import unittest

from harness import (Gateway, HttpConnection, free_port, make_config, metric_value, request, route, upstream_entry,
                     wait_until)
from oidc_provider import INTROSPECTOR, OPAQUE_RESOURCE, OidcProvider
from upstream import EchoUpstream

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HITS = 'obsgw_token_cache_lookups_total{cache="opaque",result="hit"}'
MISSES = 'obsgw_token_cache_lookups_total{cache="opaque",result="miss"}'
INVALID_CHALLENGE = 'Bearer realm="obsgw", error="invalid_token", error_description="'
SECRET_ENV = "OBSGW_TEST_INTROSPECTION_SECRET"


def checks(endpoint, result):
    return f'obsgw_token_checks_total{{endpoint="{endpoint}",result="{result}"}}'


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


def introspection(op, **overrides):
    """An introspection policy for `op` (the gateway's secret from the environment), audience urn:opaque; an
    override of None removes the key."""
    p = {"type": "introspection", "endpoint": op.issuer + "/token/introspection", "client_id": INTROSPECTOR[0],
         "client_secret_env": SECRET_ENV, "ca_file": op.ca_file, "timeout_ms": 3000, "cache_ttl_s": 60,
         "issuer": op.issuer, "audiences": [OPAQUE_RESOURCE], "groups_claim": "groups",
         "identity_headers": {"client_id": "X-Auth-Request-Client"}}
    p.update(overrides)
    return {k: v for k, v in p.items() if v is not None}


def userinfo(op, **overrides):
    p = {"type": "userinfo", "endpoint": op.issuer + "/me", "ca_file": op.ca_file, "cache_ttl_s": 60}
    p.update(overrides)
    return p


TENANT = {"type": "tenant", "claim": "tenant_id"}


class OpaqueTestCase(unittest.TestCase):
    gw = None
    op = None
    tokens = None

    @classmethod
    def opaque(cls, client="agent-a", scope="logs:write"):
        """A fresh opaque client_credentials token (remembered: it must never show up in gatewayd's output)."""
        return cls.remember(cls.op.token(client, scope=scope, resource=OPAQUE_RESOURCE))

    @classmethod
    def remember(cls, token):
        cls.tokens.append(token)
        return token

    def conn(self):
        c = HttpConnection(self.gw.port)
        self.addCleanup(c.close)
        return c

    def get(self, conn, target, token=None, headers=()):
        conn.request("GET", target, (bearer(token) if token is not None else []) + list(headers))
        return conn.read_response()

    def counter(self, series):
        return metric_value(self.gw.metrics(), series)

    def counters(self, *series):
        text = self.gw.metrics()
        return [metric_value(text, s) for s in series]

    def assertRefused(self, r, status, code):
        self.assertEqual(r.status, status, r)
        body = r.json()
        self.assertEqual(body["error"], code, r)
        self.assertIsInstance(body.get("message"), str, r)
        self.assertEqual(body.get("request_id"), r.header("X-Request-Id"), r)
        self.assertRegex(body["request_id"], HEX32)
        return body

    def assertInactive(self, r):
        """401 inactive_token with the RFC 6750 invalid_token challenge."""
        body = self.assertRefused(r, 401, "inactive_token")
        challenges = r.header_all("WWW-Authenticate")
        self.assertEqual(len(challenges), 1, r)
        self.assertTrue(challenges[0].startswith(INVALID_CHALLENGE), challenges)
        return body

    def assertUnavailable(self, r):
        """503 identity_provider_unavailable with a Retry-After in seconds."""
        body = self.assertRefused(r, 503, "identity_provider_unavailable")
        self.assertRegex(r.header("Retry-After") or "", r"^[1-9][0-9]*$", r)
        return body

    @classmethod
    def assert_no_token_in_output(cls):
        with cls.gw._cond:
            text = "\n".join(json.dumps(l) for l in cls.gw.lines) + "\n" + "\n".join(cls.gw.stderr_lines)
        leaked = [t[:12] + "..." for t in cls.tokens if t in text]
        if leaked:
            raise AssertionError(f"tokens appeared in gatewayd's output: {leaked}")


# ---------------------------------------------------------------------------------------------------------


class OpaqueTokenTest(OpaqueTestCase):
    """One provider over HTTPS and one gatewayd with introspection and userinfo routes."""

    @classmethod
    def setUpClass(cls):
        cls.tokens = []
        cls.op = OidcProvider(tls=True)
        cls.addClassCleanup(cls.op.stop)
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cls.tmpdir = tempfile.mkdtemp(prefix="obsgw-opaque-")
        cls.addClassCleanup(shutil.rmtree, cls.tmpdir, True)
        wrong_secret = os.path.join(cls.tmpdir, "wrong-secret")
        with open(wrong_secret, "w") as f:
            f.write("not-the-gateway-secret\n")
        closed = free_port()  # nothing listens there

        op = cls.op
        intro = introspection(op)
        cfg = make_config(
            {"echo": upstream_entry(cls.up.url)},
            [route("intro", "echo", path_prefix="/intro", policies=[intro, TENANT]),
             route("short", "echo", path_prefix="/short", policies=[introspection(op, cache_ttl_s=1)]),
             route("aud", "echo", path_prefix="/aud", policies=[introspection(op, audiences=["urn:other"])]),
             route("iss", "echo", path_prefix="/iss", policies=[introspection(op, issuer="https://idp.invalid")]),
             route("anyaud", "echo", path_prefix="/anyaud", policies=[introspection(op, audiences=[])]),
             route("down", "echo", path_prefix="/down", policies=[introspection(
                 op, endpoint=f"https://127.0.0.1:{closed}/token/introspection", timeout_ms=1000)]),
             route("badcred", "echo", path_prefix="/badcred", policies=[introspection(
                 op, client_secret_env=None, client_secret_file=wrong_secret)]),
             route("me", "echo", path_prefix="/me", policies=[userinfo(op), TENANT]),
             route("wrongme", "echo", path_prefix="/wrongme", policies=[userinfo(op, endpoint=op.issuer + "/userinfo")])])
        cls.gw = Gateway.start(cfg, env={SECRET_ENV: INTROSPECTOR[1]})
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def tearDownClass(cls):
        # over everything the class did (the gateway is still running: cleanups come after this)
        cls.assert_no_token_in_output()

    def setUp(self):
        self.up.reset()

    def only_upstream_request(self):
        [rec] = self.up.snapshot()
        return rec

    # --- introspection: admitted, identity, cache ---

    def test_introspected_token_reaches_upstream_and_is_cached(self):
        """agent-a's opaque token passes: the upstream sees tenant-a (tenant_id from the introspection answer),
        the client id, no Authorization and no spoofed identity; the second request is a cache hit and the
        provider is asked once."""
        token = self.opaque("agent-a")
        c = self.conn()
        hits0, misses0, active0, refused0, error0 = self.counters(
            HITS, MISSES, checks("introspection", "active"), checks("introspection", "refused"),
            checks("introspection", "error"))
        r = self.get(c, "/intro/push", token, [("X-Auth-Request-User", "mallory"), ("X-Scope-OrgID", "tenant-b")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Route"), "intro")
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-a"])
        self.assertEqual(rec.header_all("X-Auth-Request-Client"), ["agent-a"])
        # oidc-provider's answer for a client_credentials token has no sub: the client is the subject, and the
        # spoofed value is replaced.
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["agent-a"])
        self.assertEqual(rec.header_all("Authorization"), [])

        r = self.get(c, "/intro/push", token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.hits, 2)
        self.assertEqual(self.up.snapshot()[1].header_all("X-Scope-OrgID"), ["tenant-a"])
        hits, misses, active, refused, error = self.counters(
            HITS, MISSES, checks("introspection", "active"), checks("introspection", "refused"),
            checks("introspection", "error"))
        self.assertEqual((hits - hits0, misses - misses0), (1, 1))
        self.assertEqual((active - active0, refused - refused0, error - error0), (1, 0, 0))
        access = self.gw.wait_access(lambda l: l.get("request_id") == r.header("X-Request-Id"))
        self.assertEqual((access["status"], access.get("tenant")), (200, "tenant-a"))

    def test_agent_b_lands_under_tenant_b(self):
        r = request(self.gw.port, "GET", "/intro/x", bearer(self.opaque("agent-b")) + [("X-Scope-OrgID", "tenant-a")])
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-b"])
        self.assertEqual(rec.header_all("X-Auth-Request-Client"), ["agent-b"])

    def test_groups_from_the_introspection_answer(self):
        """agent-multi has groups and no tenant_id: the groups reach the upstream; the tenant policy, with no
        tenant_id to read, refuses (403 before the upstream)."""
        token = self.opaque("agent-multi")
        r = request(self.gw.port, "GET", "/anyaud/x", bearer(token))
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual(rec.header_all("X-Auth-Request-Groups"), ["obs-tenant-acme,obs-tenant-globex,staff"])
        self.up.reset()
        self.assertRefused(request(self.gw.port, "GET", "/intro/x", bearer(token)), 403, "no_tenant")
        self.assertEqual(self.up.hits, 0)

    # --- introspection: refusals ---

    def test_garbage_token_refused_then_served_from_negative_cache(self):
        token = self.remember(secrets.token_urlsafe(32))
        c = self.conn()
        hits0, refused0 = self.counters(HITS, checks("introspection", "refused"))
        self.assertInactive(self.get(c, "/intro/x", token))
        self.assertEqual(self.counter(checks("introspection", "refused")) - refused0, 1)
        started = time.monotonic()
        self.assertInactive(self.get(c, "/intro/x", token))
        self.assertLess(time.monotonic() - started, 5)
        hits, refused = self.counters(HITS, checks("introspection", "refused"))
        self.assertEqual((hits - hits0, refused - refused0), (1, 1))  # no second call to the provider
        self.assertEqual(self.up.hits, 0)

    def test_revoked_token_refused_once_the_cached_answer_expires(self):
        """cache_ttl_s 1: a revoked token may still be admitted from the cache right after revocation (until the
        cached answer's second is over), and is refused once it has expired (the provider is asked again and says
        active: false)."""
        token = self.opaque("agent-a")
        c = self.conn()
        self.assertEqual(self.get(c, "/short/x", token).status, 200)
        admitted_at = time.monotonic()
        self.op.revoke(token, "agent-a")
        self.assertEqual(self.op.introspect(token), (200, {"active": False}))
        refused0 = self.counter(checks("introspection", "refused"))
        r = self.get(c, "/short/x", token)  # the cached answer, for at most the TTL; or already the refusal
        if r.status != 200:
            self.assertInactive(r)
        r = r if r.status != 200 else wait_until(lambda: (lambda r: r if r.status != 200 else None)(self.get(c, "/short/x", token)),
                       timeout=4, interval=0.1, message="the revoked token to be refused")
        self.assertInactive(r)
        # cache_ttl_s counts whole seconds: an answer cached at second T serves through second T+1
        self.assertLess(time.monotonic() - admitted_at, 3)
        self.assertEqual(self.counter(checks("introspection", "refused")) - refused0, 1)

    def test_negative_cache_expires(self):
        """Refusals are cached for min(cache_ttl_s, 5 s): with cache_ttl_s 1 the provider is asked again soon."""
        token = self.remember(secrets.token_urlsafe(32))
        c = self.conn()
        refused0 = self.counter(checks("introspection", "refused"))
        self.assertInactive(self.get(c, "/short/x", token))
        wait_until(lambda: self.assertInactive(self.get(c, "/short/x", token)) and
                   self.counter(checks("introspection", "refused")) - refused0 == 2,
                   timeout=4, interval=0.2, message="a second call to the provider")

    def test_wrong_audience_and_issuer_refused(self):
        token = self.opaque("agent-a")
        body = self.assertInactive(request(self.gw.port, "GET", "/aud/x", bearer(token)))
        self.assertIn("audience", body["message"])
        body = self.assertInactive(request(self.gw.port, "GET", "/iss/x", bearer(token)))
        self.assertIn("issuer", body["message"])
        self.assertEqual(self.up.hits, 0)
        self.assertEqual(request(self.gw.port, "GET", "/intro/x", bearer(token)).status, 200)  # the token is fine

    def test_tokens_without_the_audience_refused(self):
        """bob's user access token (bound to no resource, so no aud) and his refresh token are active at the
        provider but lack aud urn:opaque: refused on the audience-checked route; the access token passes where
        no audience is configured, with bob as the subject."""
        user = self.op.user_tokens("bob", scope="openid offline_access", prompt="consent")
        access, refresh = self.remember(user["access_token"]), self.remember(user["refresh_token"])
        self.remember(user["id_token"])
        self.assertTrue(self.op.introspect(refresh)[1]["active"])
        self.assertNotIn("aud", self.op.introspect(refresh)[1])
        for token in (access, refresh):
            self.assertInactive(request(self.gw.port, "GET", "/intro/x", bearer(token)))
        self.assertEqual(self.up.hits, 0)
        r = request(self.gw.port, "GET", "/anyaud/x", bearer(access))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.only_upstream_request().header_all("X-Auth-Request-User"), ["bob"])

    def test_refresh_token_is_not_an_access_token(self):
        """Without configured audiences, a refresh token must still not pass as a bearer token: oidc-provider
        introspects refresh tokens as active (sub, client_id, scope, no token_type, no aud), and RFC 6749 1.5 says
        they are never sent to resource servers. gatewayd requires token_type Bearer (require_token_type)."""
        refresh = self.remember(self.op.user_tokens("bob", scope="openid offline_access",
                                                    prompt="consent")["refresh_token"])
        self.assertTrue(self.op.introspect(refresh)[1]["active"])
        body = self.assertInactive(request(self.gw.port, "GET", "/anyaud/x", bearer(refresh)))
        self.assertIn("not an access token", body["message"])
        self.assertEqual(self.up.hits, 0)

    def test_jwt_on_introspection_route_is_refused(self):
        """oidc-provider answers 400 unsupported_token_type for a JWT: the provider will not vouch for it, so the
        token is refused (401, not 503: nothing is wrong with the provider), and the refusal is remembered briefly
        (the second try does not ask again)."""
        jwt = self.remember(self.op.token("agent-a"))
        self.assertEqual(self.op.introspect(jwt)[0], 400)
        c = self.conn()
        refused0, error0 = self.counters(checks("introspection", "refused"), checks("introspection", "error"))
        body = self.assertInactive(self.get(c, "/intro/x", jwt))
        self.assertIn("refused to check", body["message"])
        self.assertInactive(self.get(c, "/intro/x", jwt))  # from the negative cache
        refused1, error1 = self.counters(checks("introspection", "refused"), checks("introspection", "error"))
        self.assertEqual((refused1 - refused0, error1 - error0), (1, 0))
        self.assertEqual(self.up.hits, 0)

    def test_userinfo_endpoint_answering_404_is_the_provider_failing(self):
        """A userinfo endpoint that answers 404 (a wrong path) says nothing about the token: 503, never cached
        as a refusal, so the client keeps its valid token."""
        user = self.remember(self.op.user_token("alice"))
        c = self.conn()
        for _ in range(2):
            self.assertUnavailable(self.get(c, "/wrongme/x", user))
        self.assertEqual(self.up.hits, 0)

    def test_missing_token(self):
        r = request(self.gw.port, "GET", "/intro/x")
        self.assertRefused(r, 401, "missing_token")
        self.assertEqual(r.header_all("WWW-Authenticate"), ['Bearer realm="obsgw"'])

    # --- introspection: the provider cannot answer ---

    def test_endpoint_unreachable_is_503(self):
        token = self.opaque("agent-a")
        c = self.conn()
        error0 = self.counter(checks("introspection", "error"))
        for _ in range(2):  # errors are not cached
            self.assertUnavailable(self.get(c, "/down/x", token))
        self.assertEqual(self.counter(checks("introspection", "error")) - error0, 2)
        self.assertEqual(self.up.hits, 0)

    def test_wrong_gateway_credentials_are_503(self):
        """The provider refuses the gateway's own client authentication (401 invalid_client): the token is not
        at fault, so 503, not 401."""
        token = self.opaque("agent-a")
        self.assertEqual(self.op.introspect(token, secret="not-the-gateway-secret")[0], 401)
        body = self.assertUnavailable(request(self.gw.port, "GET", "/badcred/x", bearer(token)))
        # The client learns nothing of the gateway's internals; the operator's log says what happened.
        self.assertNotIn("401", body["message"])
        self.assertNotIn("127.0.0.1", body["message"])
        self.gw.wait_for_log(lambda l: l.get("msg") == "token check failed" and "401" in l.get("error", ""))

    # --- userinfo ---

    def test_userinfo_user_token_admitted_and_cached(self):
        token = self.remember(self.op.user_token("alice"))
        c = self.conn()
        hits0, active0 = self.counters(HITS, checks("userinfo", "active"))
        for _ in range(2):
            r = self.get(c, "/me/x", token, [("X-Auth-Request-User", "mallory")])
            self.assertEqual(r.status, 200, r)
        for rec in self.up.snapshot():
            self.assertEqual(rec.header_all("X-Auth-Request-User"), ["alice"])
            self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-a"])  # tenant_id from the userinfo answer
            self.assertEqual(rec.header_all("Authorization"), [])
        hits, active = self.counters(HITS, checks("userinfo", "active"))
        self.assertEqual((hits - hits0, active - active0), (1, 1))

    def test_userinfo_bob(self):
        r = request(self.gw.port, "GET", "/me/x", bearer(self.remember(self.op.user_token("bob"))))
        self.assertEqual(r.status, 200, r)
        rec = self.only_upstream_request()
        self.assertEqual((rec.header_all("X-Auth-Request-User"), rec.header_all("X-Scope-OrgID")),
                         (["bob"], ["tenant-b"]))

    def test_userinfo_refuses_client_credentials_tokens(self):
        """/me answers 401 invalid_token for client_credentials tokens (a JWT, or opaque but bound to a resource):
        gatewayd says inactive_token and counts a refusal."""
        jwt = self.remember(self.op.token("agent-a"))
        opaque = self.opaque("agent-a")
        for token in (jwt, opaque):
            self.assertEqual(self.op.request("GET", "/me", None, dict(bearer(token)))[0], 401)
        refused0 = self.counter(checks("userinfo", "refused"))
        for token in (jwt, opaque):
            self.assertInactive(request(self.gw.port, "GET", "/me/x", bearer(token)))
        self.assertEqual(self.counter(checks("userinfo", "refused")) - refused0, 2)
        self.assertEqual(self.up.hits, 0)

    def test_no_token_in_output(self):
        """Admitted, refused and failed requests: no token text in gatewayd's stdout or stderr."""
        rids = []
        for target, token in (("/intro/x", self.opaque()), ("/aud/x", self.opaque()), ("/down/x", self.opaque()),
                              ("/me/x", self.remember(self.op.user_token("alice"))),
                              ("/intro/x", self.remember(secrets.token_urlsafe(24)))):
            r = request(self.gw.port, "GET", target, bearer(token))
            self.assertIn(r.status, (200, 401, 503), r)
            rids.append(r.header("X-Request-Id"))
        for rid in rids:
            self.gw.wait_access(lambda l: l.get("request_id") == rid)
        self.assert_no_token_in_output()


# ---------------------------------------------------------------------------------------------------------


class IntrospectionOutageTest(OpaqueTestCase):
    """The provider process stops: cached answers keep serving, new tokens get 503."""

    @classmethod
    def setUpClass(cls):
        cls.tokens = []
        cls.op = OidcProvider(tls=True)
        cls.addClassCleanup(cls.op.stop)
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config({"echo": upstream_entry(cls.up.url)},
                          [route("intro", "echo", path_prefix="/intro",
                                 policies=[introspection(cls.op, timeout_ms=1000)])])
        cls.gw = Gateway.start(cfg, env={SECRET_ENV: INTROSPECTOR[1]})
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def tearDownClass(cls):
        cls.assert_no_token_in_output()

    def test_outage(self):
        cached, fresh = self.opaque("agent-a"), self.opaque("agent-b")
        c = self.conn()
        self.assertEqual(self.get(c, "/intro/x", cached).status, 200)
        self.op.stop()
        error0 = self.counter(checks("introspection", "error"))
        self.assertEqual(self.get(c, "/intro/x", cached).status, 200)  # the cached answer
        body = self.assertUnavailable(self.get(c, "/intro/x", fresh))
        self.assertNotIn(fresh, body["message"])
        self.assertEqual(self.counter(checks("introspection", "error")) - error0, 1)
        self.assertEqual(self.up.hits, 2)


if __name__ == "__main__":
    unittest.main()
