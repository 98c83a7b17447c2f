"""Forward authentication: gatewayd as the external authorizer of a real nginx (`auth_request`) in front of an
EchoUpstream, and gatewayd's forward-auth endpoint on its own.

Tokens are RS256 JWTs signed here with the openssl CLI (a key pair made per test class); gatewayd gets the public
key through "public_key_files" (kid = the file name without extension). nginx (nginx_server.Nginx) is Debian's,
built with the auth_request module; it runs from its own prefix in a temporary directory and is stopped by PID.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import LOCALHOST, Gateway, HttpConnection, make_config, request
from nginx_server import Nginx
from upstream import EchoUpstream

ISSUER = "https://issuer.example"
AUDIENCE = "urn:obsgw"
IDENTITY_HEADERS = ("X-Scope-OrgID", "X-Auth-Request-User", "X-Auth-Request-Email", "X-Auth-Request-Groups")
HEX32 = re.compile(r"^[0-9a-f]{32}$")


# ---------------------------------------------------------------------------------------------------------
# tokens


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Issuer:
    """An RSA key pair made with the openssl CLI; signs RS256 JWTs with `openssl dgst -sha256 -sign`."""

    def __init__(self, directory, name):
        self.kid = name
        self.private_key = os.path.join(directory, name + ".key")
        self.public_key = os.path.join(directory, name + ".pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", self.private_key], check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "pkey", "-in", self.private_key, "-pubout", "-out", self.public_key],
                       check=True, capture_output=True, timeout=30)

    def sign(self, signing_input):
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.private_key], input=signing_input,
                              check=True, capture_output=True, timeout=30).stdout

    def token(self, header=None, kid=None, **claims):
        """A compact JWS. Claims default to a valid token of this test's issuer and audience; a claim given as
        None is left out."""
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        head = {"alg": "RS256", "typ": "JWT", "kid": kid or self.kid}
        head.update(header or {})
        signing_input = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(body).encode())).encode()
        return signing_input.decode() + "." + b64url(self.sign(signing_input))


def bearer(token):
    return {"Authorization": "Bearer " + token}


# ---------------------------------------------------------------------------------------------------------
# nginx


def auth_request_http(gateway_port, upstream_port, port):
    """The nginx setup under test (inside http {}): location / asks gatewayd (/_auth -> gatewayd /auth) before
    proxying, copies the identity headers it answers with into the proxied request and passes refusals on."""
    sets = "\n".join(f"            auth_request_set $auth_{v} $upstream_http_{h.lower().replace('-', '_')};\n"
                     f"            proxy_set_header {h} $auth_{v};"
                     for v, h in (("tenant", "X-Scope-OrgID"), ("user", "X-Auth-Request-User"),
                                  ("email", "X-Auth-Request-Email"), ("groups", "X-Auth-Request-Groups")))
    return f"""
    upstream gatewayd_auth {{ server {LOCALHOST}:{gateway_port}; keepalive 8; }}
    server {{
        listen {LOCALHOST}:{port};
        location / {{
            auth_request /_auth;
{sets}
            auth_request_set $auth_request_id $upstream_http_x_request_id;
            auth_request_set $auth_www $upstream_http_www_authenticate;
            proxy_set_header X-Request-Id $auth_request_id;
            proxy_set_header Authorization "";
            error_page 401 = @auth_401;
            error_page 403 = @auth_403;
            proxy_pass http://{LOCALHOST}:{upstream_port};
        }}
        location = /_auth {{
            internal;
            proxy_pass http://gatewayd_auth/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
        # nginx itself copies WWW-Authenticate of a 401 answer; a 403's is added here.
        location @auth_401 {{
            add_header X-Request-Id $auth_request_id always;
            default_type application/json;
            return 401 '{{"error":"unauthorized","request_id":"$auth_request_id"}}\\n';
        }}
        location @auth_403 {{
            add_header WWW-Authenticate $auth_www always;
            add_header X-Request-Id $auth_request_id always;
            default_type application/json;
            return 403 '{{"error":"forbidden","request_id":"$auth_request_id"}}\\n';
        }}
    }}"""


# ---------------------------------------------------------------------------------------------------------
# gatewayd


def forward_auth_route(name, path_prefix, policies=(), forward_auth=True):
    r = {"name": name, "match": {"path_prefix": path_prefix}, "forward_auth": forward_auth}
    if policies:
        r["policies"] = list(policies)
    return r


def jwt_policy(issuer, **extra):
    p = {"type": "jwt", "providers": [{"issuer": ISSUER, "public_key_files": [issuer.public_key],
                                       "audiences": [AUDIENCE]}],
         "token_sources": ["bearer"]}
    p.update(extra)
    return p


class ForwardAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="obsgw-fa-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.issuer = Issuer(cls.keydir, "test-issuer")
        # Same kid, different key: its tokens look right but their signatures do not verify.
        cls.impostor = Issuer(tempfile.mkdtemp(dir=cls.keydir), "test-issuer")

        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        routes = [
            forward_auth_route("auth", "/auth", [jwt_policy(cls.issuer), {"type": "tenant", "claim": "tenant_id"},
                                                 {"type": "authorize", "scopes": ["logs:write"]}]),
            # No identity policy at all: nothing may come back in the identity headers.
            forward_auth_route("open", "/open"),
            # The subject is not passed on: a client's X-Auth-Request-User must not come back either.
            forward_auth_route("nouser", "/nouser", [jwt_policy(cls.issuer, identity_headers={"subject": ""})]),
            forward_auth_route("custom", "/custom",
                               [{"type": "headers", "request": {"set": {"X-Custom": "from-policy"}}}],
                               forward_auth={"response_headers": ["X-Custom", "X-Other"]}),
            # The client chooses among its tenants in X-Scope-OrgID (see test_tenant_chosen_by_client_header).
            forward_auth_route("choose", "/choose", [jwt_policy(cls.issuer),
                                                     {"type": "tenant", "claim": "groups",
                                                      "strip_prefix": "obs-tenant-", "from_header": True}]),
        ]
        cls.gw = Gateway.start(make_config({}, routes))
        cls.addClassCleanup(cls.gw.stop)
        cls.nginx = Nginx(lambda port: auth_request_http(cls.gw.port, cls.up.port, port))
        cls.addClassCleanup(cls.nginx.stop)

        cls.alice = cls.issuer.token(sub="alice", email="alice@example.com", groups=["dev", "ops"],
                                     tenant_id="tenant-a", scope="logs:write logs:read")
        cls.bob = cls.issuer.token(sub="bob", tenant_id="tenant-b", scope="logs:write")  # no email, no groups
        cls.reader = cls.issuer.token(sub="carol", tenant_id="tenant-a", scope="logs:read")

    def setUp(self):
        self.up.reset()

    def via_nginx(self, method="GET", target="/loki/api/v1/push", headers=None, body=None):
        return request(self.nginx.port, method, target, headers, body)

    def direct(self, target="/auth", headers=None, method="GET", body=None):
        return request(self.gw.port, method, target, headers, body)

    def access_line(self, request_id):
        return self.gw.wait_access(lambda l: l.get("request_id") == request_id)

    # --- through nginx ---

    def test_valid_token_reaches_upstream_with_tenant_and_identity(self):
        """A valid token passes nginx: the upstream gets the tenant and identity gatewayd answered with (client
        copies replaced), the original method, target and body, and not the token."""
        headers = dict(bearer(self.alice), **{"X-Scope-OrgID": "evil", "X-Auth-Request-User": "admin",
                                              "X-Auth-Request-Groups": "admins"})
        r = self.via_nginx("POST", "/loki/api/v1/push?x=1&y=%2F", headers, b"log line\n" * 100)
        self.assertEqual(r.status, 200, r)
        seen = r.json()
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["target"], "/loki/api/v1/push?x=1&y=%2F")
        self.assertEqual(seen["body_len"], 900)
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-a"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["alice"])
        self.assertEqual(rec.header_all("X-Auth-Request-Email"), ["alice@example.com"])
        self.assertEqual(rec.header_all("X-Auth-Request-Groups"), ["dev,ops"])
        self.assertIsNone(rec.header("Authorization"))
        # The upstream's X-Request-Id is the one gatewayd logged for the check: one id end to end.
        line = self.access_line(rec.header("X-Request-Id"))
        self.assertEqual((line["route"], line["status"], line["tenant"]), ("auth", 200, "tenant-a"))
        # An nginx subrequest is always a GET without a body, whatever the client's method.
        self.assertEqual((line["method"], line["path"], line["bytes_in"]), ("GET", "/auth", 0))
        self.assertEqual(self.up.hits, 1)

    def test_headers_the_policies_did_not_set_are_not_passed_from_the_client(self):
        """bob's token has no email and no groups: the client's own X-Auth-Request-Email/-Groups do not reach
        the upstream (nginx sets them to gatewayd's empty answer, which removes them)."""
        headers = dict(bearer(self.bob), **{"X-Auth-Request-Email": "ceo@example.com",
                                            "X-Auth-Request-Groups": "admins", "X-Scope-OrgID": "tenant-a"})
        r = self.via_nginx("GET", "/loki/api/v1/query", headers)
        self.assertEqual(r.status, 200, r)
        rec = self.up.snapshot()[0]
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-b"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["bob"])
        self.assertEqual(rec.header_all("X-Auth-Request-Email"), [])
        self.assertEqual(rec.header_all("X-Auth-Request-Groups"), [])

    def test_missing_token_is_401_and_never_reaches_upstream(self):
        r = self.via_nginx("POST", "/loki/api/v1/push", {"X-Scope-OrgID": "tenant-a"}, b"x")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.header_all("WWW-Authenticate"), ['Bearer realm="obsgw"'])
        self.assertEqual(r.json()["error"], "unauthorized")
        request_id = r.header("X-Request-Id")
        self.assertRegex(request_id, HEX32)
        self.assertEqual(r.json()["request_id"], request_id)
        line = self.access_line(request_id)
        self.assertEqual((line["status"], line["error"]), (401, "missing_token"))
        self.assertEqual(self.up.hits, 0)

    def test_bad_tokens_are_401_and_never_reach_upstream(self):
        alice = self.alice.split(".")
        tampered_payload = json.loads(base64.urlsafe_b64decode(alice[1] + "=" * (-len(alice[1]) % 4)))
        tampered_payload["tenant_id"] = "tenant-b"
        cases = {
            "malformed": "not-a-jwt",
            "garbage segments": "a.b.c",
            "other key, same kid": self.impostor.token(sub="alice", tenant_id="tenant-a", scope="logs:write"),
            "unknown kid": self.issuer.token(kid="nope", sub="alice", tenant_id="tenant-a", scope="logs:write"),
            "expired": self.issuer.token(sub="alice", tenant_id="tenant-a", scope="logs:write",
                                         iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
            "wrong audience": self.issuer.token(aud="urn:other", sub="alice", tenant_id="tenant-a",
                                                scope="logs:write"),
            "wrong issuer": self.issuer.token(iss="https://evil.example", sub="alice", tenant_id="tenant-a",
                                              scope="logs:write"),
            "tampered payload": alice[0] + "." + b64url(json.dumps(tampered_payload).encode()) + "." + alice[2],
            "alg none": b64url(b'{"alg":"none","typ":"JWT"}') + "." + alice[1] + ".",
        }
        for name, token in cases.items():
            with self.subTest(name):
                r = self.via_nginx("GET", "/loki/api/v1/push", bearer(token))
                self.assertEqual(r.status, 401, r)
                www = r.header_all("WWW-Authenticate")
                self.assertEqual(len(www), 1, www)
                self.assertTrue(www[0].startswith('Bearer realm="obsgw"'), www)
                line = self.access_line(r.header("X-Request-Id"))
                self.assertEqual(line["status"], 401)
        self.assertEqual(self.up.hits, 0)

    def test_token_without_the_scope_is_403_with_the_reason(self):
        r = self.via_nginx("POST", "/loki/api/v1/push", bearer(self.reader), b"x")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.header_all("WWW-Authenticate"), ['Bearer error="insufficient_scope", scope="logs:write"'])
        self.assertEqual(r.json()["error"], "forbidden")
        line = self.access_line(r.header("X-Request-Id"))
        self.assertEqual((line["status"], line["error"]), (403, "insufficient_scope"))
        self.assertEqual(self.up.hits, 0)

    def test_mixed_requests_on_one_connection_keep_their_own_answers(self):
        """Valid, missing and unauthorized requests interleaved on one client connection (nginx reuses its
        keep-alive connections to gatewayd): every answer and every forwarded tenant belongs to its request."""
        plan = [("a", self.alice, 200), ("none", None, 401), ("b", self.bob, 200), ("reader", self.reader, 403),
                ("bad", "x.y.z", 401)] * 4
        with HttpConnection(self.nginx.port) as c:
            for i, (name, token, status) in enumerate(plan):
                headers = {"X-Seq": str(i), "X-Scope-OrgID": "evil"}
                if token:
                    headers.update(bearer(token))
                body = b"%d" % i if i % 2 else None
                c.request("POST" if body else "GET", f"/seq/{i}", headers, body)
                r = c.read_response()
                self.assertEqual(r.status, status, (i, name, r))
        forwarded = self.up.snapshot()
        self.assertEqual(len(forwarded), 8)
        for rec in forwarded:
            i = int(rec.header("X-Seq"))
            self.assertEqual(rec.path, f"/seq/{i}")
            self.assertEqual(rec.header_all("X-Scope-OrgID"), [{"a": "tenant-a", "b": "tenant-b"}[plan[i][0]]])

    # --- gatewayd's endpoint directly ---

    def test_endpoint_answers_200_with_the_identity_headers_and_no_body(self):
        headers = dict(bearer(self.alice), **{"X-Scope-OrgID": "evil", "x-auth-request-user": "admin"})
        for method in ("GET", "POST", "HEAD"):
            with self.subTest(method):
                r = self.direct("/auth/loki/api/v1/push", headers, method)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, b"")
                self.assertEqual(r.header("Content-Length"), "0")
                self.assertEqual(r.header_all("X-Scope-OrgID"), ["tenant-a"])
                self.assertEqual(r.header_all("X-Auth-Request-User"), ["alice"])
                self.assertEqual(r.header_all("X-Auth-Request-Email"), ["alice@example.com"])
                self.assertEqual(r.header_all("X-Auth-Request-Groups"), ["dev,ops"])
                self.assertIsNone(r.header("Authorization"))
                line = self.access_line(r.header("X-Request-Id"))
                self.assertEqual((line["route"], line["upstream"], line["status"]), ("auth", "forward_auth", 200))
        self.assertEqual(self.up.hits, 0)

    def test_client_identity_headers_never_come_back_unless_a_policy_set_them(self):
        spoof = [("X-Auth-Request-User", "admin"), ("x-auth-request-user", "root"), ("X-SCOPE-ORGID", "evil"),
                 ("X-Auth-Request-Email", "ceo@example.com"), ("X-Auth-Request-Groups", "admins")]
        r = self.direct("/open", spoof)
        self.assertEqual(r.status, 200, r)
        for h in IDENTITY_HEADERS:
            self.assertEqual(r.header_all(h), [], h)

        r = self.direct("/nouser", spoof + [("Authorization", "Bearer " + self.alice)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("X-Auth-Request-User"), [])  # not configured: not set, client's removed
        self.assertEqual(r.header_all("X-Scope-OrgID"), [])  # no tenant policy on this route
        self.assertEqual(r.header_all("X-Auth-Request-Email"), ["alice@example.com"])

        r = self.direct("/custom", [("X-Custom", "client"), ("X-Other", "client")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("X-Custom"), ["from-policy"])
        self.assertEqual(r.header_all("X-Other"), [])
        self.assertEqual(r.header_all("X-Auth-Request-User"), [])  # not in this route's response_headers

    def test_endpoint_refusals_are_json_with_www_authenticate(self):
        for target, headers, status, error in (
                ("/auth", {"X-Auth-Request-User": "admin"}, 401, "missing_token"),
                ("/auth", bearer("x.y.z"), 401, "malformed_token"),
                ("/auth", bearer(self.reader), 403, "insufficient_scope")):
            with self.subTest(error):
                r = self.direct(target, headers)
                self.assertEqual(r.status, status, r)
                body = r.json()
                self.assertEqual(set(body), {"error", "message", "request_id"})
                self.assertEqual(body["error"], error)
                self.assertEqual(body["request_id"], r.header("X-Request-Id"))
                self.assertTrue(r.header("WWW-Authenticate", "").startswith("Bearer "), r)
                for h in IDENTITY_HEADERS:
                    self.assertEqual(r.header_all(h), [], h)

    def test_check_request_body_is_never_read_as_a_request(self):
        """A forward-auth answer does not read the body: a request hidden in it must not be served as the next
        request on the connection (with Content-Length the body is skipped; a chunked one closes)."""
        inner = b"GET /open/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        with HttpConnection(self.gw.port) as c:
            c.request("POST", "/auth", bearer(self.alice), inner)
            first = c.read_response()
            c.request("GET", "/open/second")
            second = c.read_response()
        self.assertEqual((first.status, second.status), (200, 200))
        self.access_line(second.header("X-Request-Id"))
        self.assertEqual([l for l in self.gw.access_log() if "smuggled" in l.get("path", "")], [])

        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
        with HttpConnection(self.gw.port) as c:
            c.request("POST", "/auth", dict(bearer(self.alice), **{"Transfer-Encoding": "chunked"}), chunked)
            first = c.read_response()
            self.assertEqual(first.status, 200, first)
            if first.header("Connection", "").lower() != "close":
                c.request("GET", "/open/second")
                self.assertEqual(c.read_response().status, 200)
            else:
                self.assertTrue(c.wait_closed(3))
        time.sleep(0.2)  # the access log is written by a background thread
        self.assertEqual([l for l in self.gw.access_log() if "smuggled" in l.get("path", "")], [])

    def test_tenant_chosen_by_client_header(self):
        """A tenant policy with from_header reads the client's X-Scope-OrgID to choose among the identity's
        tenants. The forward-auth guard must leave that header to the tenant policy (it owns it) instead of
        removing it with the other response headers; a tenant the token does not allow is still refused."""
        multi = self.issuer.token(sub="multi", groups=["obs-tenant-acme", "obs-tenant-globex"], scope="logs:write")
        r = self.direct("/choose", dict(bearer(multi), **{"X-Scope-OrgID": "acme"}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("X-Scope-OrgID"), ["acme"])
        r = self.direct("/choose", dict(bearer(multi), **{"X-Scope-OrgID": "initech"}))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"], "tenant_not_allowed")


if __name__ == "__main__":
    unittest.main()
