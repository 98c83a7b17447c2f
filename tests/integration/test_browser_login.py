"""Browser single sign-on against a real OpenID Provider (oidc_provider.py: npm oidc-provider over HTTPS on
127.0.0.1): gatewayd's browser_login authenticator in front of an echo upstream standing in for Grafana.

A browser is emulated with urllib and a cookie jar that follows no redirect by itself, so every hop is seen:
the page asked for -> 302 to the provider's /auth (state, nonce, PKCE) with a login cookie -> the provider's dev
login and consent forms -> 302 to gatewayd's callback -> gatewayd exchanges the code, verifies the ID token and
asks userinfo (oidc-provider puts only `sub` in ID tokens of the code flow) -> 302 back to the page with the
session cookie -> the page, forwarded with the identity in Grafana's auth-proxy headers.

What the provider's users are (provider.mjs): alice (alice@example.com, verified, groups staff and
obs-tenant-acme), bob (bob@other.example, verified), mallory (mallory@example.com, not verified)."""

import json
import re
import shutil
import tempfile
import unittest
import urllib.parse

from harness import (LOCALHOST, Gateway, free_port, make_config, metric_value, request, route, upstream_entry,
                     wait_until)
from browser_client import Browser
from oidc_provider import OidcProvider
from upstream import EchoUpstream

SECRET_ENV = "OBSGW_TEST_SSO_CLIENT_SECRET"
COOKIE_ENV = "OBSGW_TEST_SSO_COOKIE_SECRET"
COOKIE_SECRET = "test-cookie-secret-0123456789abcdef"
HEADERS = {"subject": "X-WEBAUTH-USER", "email": "X-WEBAUTH-EMAIL", "name": "X-WEBAUTH-NAME",
           "groups": "X-WEBAUTH-GROUPS"}


def logins(result):
    return f'obsgw_browser_logins_total{{result="{result}"}}'


class BrowserLoginTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.base = f"http://{LOCALHOST}:{cls.port}"
        cls.op = OidcProvider(tls=True, sso_redirects=[cls.base + "/oauth2/callback",
                                                       cls.base + "/restricted/oauth2/callback"])
        cls.addClassCleanup(cls.op.stop)
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cls.tmpdir = tempfile.mkdtemp(prefix="obsgw-sso-")
        cls.addClassCleanup(shutil.rmtree, cls.tmpdir, True)
        cls.gw = Gateway.start(cls.config(cls.port), env={SECRET_ENV: "gateway-sso-secret", COOKIE_ENV: COOKIE_SECRET})
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def sso(cls, port, **overrides):
        p = {"type": "browser_login", "issuer": cls.op.issuer, "ca_file": cls.op.ca_file,
             "client_id": "gateway-sso", "client_secret_env": SECRET_ENV,
             "redirect_url": f"http://{LOCALHOST}:{port}/oauth2/callback", "cookie_secret_envs": [COOKIE_ENV],
             "cookie_secure": False,  # the test speaks plain http to gatewayd; the provider is https
             "identity_headers": HEADERS}
        p.update(overrides)
        return p

    @classmethod
    def config(cls, port):
        base = f"http://{LOCALHOST}:{port}"
        return make_config(
            {"grafana": upstream_entry(cls.up.url)},
            [route("restricted", "grafana", path_prefix="/restricted", policies=[cls.sso(
                port, redirect_url=base + "/restricted/oauth2/callback", cookie_name="restricted_session",
                logout_path="/restricted/oauth2/sign_out", allowed_email_domains=["example.com"])]),
             route("grafana", "grafana", path_prefix="/", policies=[cls.sso(port)])],
            server={"listen": [f"{LOCALHOST}:{port}"]})

    def setUp(self):
        self.up.reset()

    def counter(self, series):
        return metric_value(self.gw.metrics(), series) or 0

    def sign_in(self, login, page="/d/home?orgId=1", base=None, browser=None, expect_success=True):
        """Drives a whole sign-in from asking for `page`; returns (browser, final callback answer)."""
        base = base or self.base
        b = browser or Browser(self.op.ca_file)
        status, headers, _ = b.fetch(base + page)
        self.assertEqual(status, 302)
        url = headers["Location"]
        self.assertTrue(url.startswith(self.op.issuer + "/auth?"), url)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self.assertEqual(query["response_type"], ["code"])
        self.assertEqual(query["code_challenge_method"], ["S256"])
        self.assertEqual(query["scope"], ["openid email profile"])
        self.assertIn("nonce", query)
        for _ in range(10):  # /auth -> login form -> /auth/uid -> consent form -> /auth/uid -> callback
            if url.startswith(base):
                break
            status, headers, text = b.fetch(url)
            if status == 200 and "/interaction/" in url:
                m = re.search(r'name="prompt" value="(\w+)"', text)
                self.assertTrue(m, text[:300])
                form = {"prompt": m[1]}
                if m[1] == "login":
                    form.update(login=login, password="any")
                status, headers, text = b.fetch(url, form)
            self.assertIn(status, (302, 303), f"{url}: {status} {text[:300]}")
            url = urllib.parse.urljoin(url, headers["Location"])
        else:
            self.fail("the provider never sent the browser back")
        self.callback_url = url
        status, headers, text = b.fetch(url)
        if expect_success:
            self.assertEqual(status, 302, text)
            self.assertEqual(headers["Location"], page)
        return b, (status, headers, text)

    def test_sign_in_passes_the_identity_to_the_app(self):
        ok0 = self.counter(logins("success"))
        b, (status, headers, _) = self.sign_in("alice")
        set_cookies = headers.get_all("Set-Cookie")
        session = next(c for c in set_cookies if c.startswith("obsgw_session="))
        self.assertIn("HttpOnly", session)
        self.assertIn("SameSite=Lax", session)
        self.assertIn("Max-Age=43200", session)
        self.assertTrue(any(re.match(r"obsgw_session_login_[\w-]+=; Path=/oauth2/callback; Max-Age=0", c)
                            for c in set_cookies), set_cookies)
        self.assertEqual(self.counter(logins("success")) - ok0, 1)

        # The app's own cookie next to the session (an explicit Cookie header replaces the jar's).
        cookies = "grafana_session=g1; obsgw_session=" + b.cookie("obsgw_session")
        status, _, body = b.fetch(self.base + "/d/home?orgId=1", headers={"X-WEBAUTH-USER": "admin", "Cookie": cookies})
        self.assertEqual(status, 200, body)
        rec = self.up.requests[-1]
        self.assertEqual(rec.target, "/d/home?orgId=1")
        self.assertEqual(rec.header_all("X-WEBAUTH-USER"), ["alice"], "the client's copy is replaced")
        self.assertEqual(rec.header("X-WEBAUTH-EMAIL"), "alice@example.com")
        self.assertEqual(rec.header("X-WEBAUTH-NAME"), "Alice Liddell")
        self.assertEqual(rec.header("X-WEBAUTH-GROUPS"), "staff,obs-tenant-acme")
        self.assertEqual(rec.header_all("Cookie"), ["grafana_session=g1"], "the session stays with the gateway")

        # An XHR of the app with the session passes too; without it, 401 and no redirect.
        status, _, _ = b.fetch(self.base + "/api/user", headers={"Accept": "application/json"})
        self.assertEqual(status, 200)
        r = request(self.port, "GET", "/api/user", headers=[("Accept", "application/json")])
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "login_required")
        self.assertIsNone(r.header("Location"))

        # The session cookie never reaches the log.
        value = b.cookie("obsgw_session")
        with self.gw._cond:
            text = "\n".join(json.dumps(l) for l in self.gw.lines) + "\n".join(self.gw.stderr_lines)
        self.assertNotIn(value, text)
        self.assertTrue(any(l.get("msg") == "browser sign-in" and l.get("user") == "alice" for l in self.gw.lines))

    def test_a_replayed_callback_is_refused(self):
        b, _ = self.sign_in("alice")
        # The login cookie is gone and the code spent: the same callback URL again is no sign-in.
        status, _, body = b.fetch(self.callback_url)
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body)["error"], "login_expired")
        # Nor in another browser that never started a sign-in.
        status, _, body = Browser(self.op.ca_file).fetch(self.callback_url)
        self.assertEqual(json.loads(body)["error"], "login_expired")

    def test_a_callback_for_another_browsers_sign_in_is_refused(self):
        """Login CSRF: an attacker's callback URL (their code and state) opened in the victim's browser."""
        attacker = Browser(self.op.ca_file)
        status, headers, _ = attacker.fetch(self.base + "/d/home")
        self.assertEqual(status, 302)
        victim = Browser(self.op.ca_file)
        victim.fetch(self.base + "/d/home")  # the victim has a sign-in of their own in progress
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["Location"]).query)["state"][0]
        status, _, body = victim.fetch(f"{self.base}/oauth2/callback?code=stolen&state={state}")
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body)["error"], "login_expired")
        self.assertIsNone(victim.cookie("obsgw_session"))

    def test_sessions_are_sealed(self):
        b, _ = self.sign_in("alice")
        value = b.cookie("obsgw_session")
        self.assertNotIn("alice", value)
        edited = value[:30] + ("A" if value[30] != "A" else "B") + value[31:]
        r = request(self.port, "GET", "/d/home", headers=[("Accept", "text/html"), ("Cookie", "obsgw_session=" + edited)])
        self.assertEqual(r.status, 302, "an edited session is no session: sign in again")
        self.assertTrue(r.header("Location").startswith(self.op.issuer + "/auth?"))
        # The restricted route's session is another cookie, sealed for another name: this one does not open it.
        r = request(self.port, "GET", "/restricted/x", headers=[("Cookie", "restricted_session=" + value)])
        self.assertEqual(r.status, 401)

    def test_any_gateway_with_the_secret_serves_the_session(self):
        """Nothing is kept in the gateway: a second instance (another fleet member, or a restart) admits it."""
        b, _ = self.sign_in("alice")
        port2 = free_port()
        gw2 = Gateway.start(self.config(port2), env={SECRET_ENV: "gateway-sso-secret", COOKIE_ENV: COOKIE_SECRET})
        self.addCleanup(gw2.stop)
        cookie = ("Cookie", "obsgw_session=" + b.cookie("obsgw_session"))
        r = request(port2, "GET", "/d/other", headers=[cookie])
        self.assertEqual(r.status, 200)
        self.assertEqual(self.up.requests[-1].header("X-WEBAUTH-USER"), "alice")
        gw3 = Gateway.start(self.config(free_port()),
                            env={SECRET_ENV: "gateway-sso-secret", COOKIE_ENV: "another-cookie-secret-0123456789abcdef"})
        self.addCleanup(gw3.stop)
        r = request(gw3.port, "GET", "/d/other", headers=[cookie, ("Accept", "text/html")])
        self.assertEqual(r.status, 302, "another secret opens nothing")

    def test_allowed_email_domains(self):
        denied0 = self.counter(logins("denied"))
        b, _ = self.sign_in("alice", page="/restricted/dash")
        status, _, _ = b.fetch(self.base + "/restricted/dash")
        self.assertEqual(status, 200)
        self.assertEqual(self.up.requests[-1].header("X-WEBAUTH-EMAIL"), "alice@example.com")
        for login, why in (("bob", "bob@other.example is not allowed"), ("mallory", "no verified email")):
            b, (status, headers, body) = self.sign_in(login, page="/restricted/dash", expect_success=False)
            self.assertEqual(status, 403, body)
            answer = json.loads(body)
            self.assertEqual(answer["error"], "user_not_allowed")
            self.assertIn(why, answer["message"])
            self.assertIsNone(b.cookie("restricted_session"))
        self.assertEqual(self.counter(logins("denied")) - denied0, 2)

    def test_an_unverified_email_is_not_passed_on(self):
        """mallory's provider account says mallory@example.com, unverified: the app learns her subject only."""
        b, _ = self.sign_in("mallory")
        status, _, _ = b.fetch(self.base + "/d/home?orgId=1")
        self.assertEqual(status, 200)
        rec = self.up.requests[-1]
        self.assertEqual(rec.header("X-WEBAUTH-USER"), "mallory")
        self.assertIsNone(rec.header("X-WEBAUTH-EMAIL"))

    def test_sign_out(self):
        b, _ = self.sign_in("alice")
        status, headers, _ = b.fetch(self.base + "/oauth2/sign_out")
        self.assertEqual(status, 302)
        self.assertEqual(headers["Location"], "/")
        self.assertIsNone(b.cookie("obsgw_session"))
        status, headers, _ = b.fetch(self.base + "/d/home")
        self.assertEqual(status, 302)
        self.assertTrue(headers["Location"].startswith(self.op.issuer + "/auth?"))

    def test_provider_refusal_reaches_the_browser(self):
        b = Browser(self.op.ca_file)
        state = b.start_sign_in(self.base + "/d/home")
        status, headers, body = b.fetch(f"{self.base}/oauth2/callback?error=access_denied&state={state}")
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(body)["error"], "login_refused")
        self.assertFalse(any(n.startswith("obsgw_session_login_") for n in b.cookies()), "login cookie cleared")

    def test_a_code_the_provider_does_not_know_is_refused(self):
        b = Browser(self.op.ca_file)
        state = b.start_sign_in(self.base + "/d/home")
        status, _, body = b.fetch(f"{self.base}/oauth2/callback?code=made-up&state={state}")
        self.assertEqual(status, 401, body)
        answer = json.loads(body)
        self.assertEqual(answer["error"], "login_failed")
        self.assertIn("invalid_grant", answer["message"])


if __name__ == "__main__":
    unittest.main()
