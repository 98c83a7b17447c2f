"""Browser sign-in with "provider": "github" against a stand-in for GitHub written here (GitHub itself is not on
loopback): the OAuth web flow and the three REST calls the gateway makes, answering as GitHub documents them —
the token endpoint reports a bad code as HTTP 200 with {"error": "bad_verification_code"}, the API refuses calls
without a User-Agent, /user shows the public profile email (which the user chooses and GitHub does not verify),
/user/emails says which addresses are verified.

Users: octocat (primary verified octocat@github.example, org obs-team, no public email) and eve (public email
"admin@github.example" on her profile, her only address eve@evil.example unverified)."""

import base64
import hashlib
import json
import secrets
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from browser_client import Browser
from harness import LOCALHOST, Gateway, free_port, make_config, metric_value, route, upstream_entry
from upstream import EchoUpstream

CLIENT_ID, CLIENT_SECRET = "Ov23liTestClient", "github-test-client-secret"
COOKIE_SECRET = "github-test-cookie-secret-0123456789"
USERS = {
    "octocat": {"profile": {"login": "octocat", "id": 583231, "name": "The Octocat", "email": None},
                "emails": [{"email": "octocat@github.example", "primary": True, "verified": True}],
                "orgs": ["obs-team"]},
    "eve": {"profile": {"login": "eve", "id": 666, "name": "Eve", "email": "admin@github.example"},
            "emails": [{"email": "eve@evil.example", "primary": True, "verified": False}], "orgs": []},
}


class FakeGitHub:
    """github.com's OAuth endpoints and api.github.com's /user, /user/emails and /user/orgs on one port."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next_login = "octocat"
        self.codes = {}   # code -> (login, redirect_uri, code_challenge)
        self.tokens = {}  # access token -> (login, scopes)
        self.requests = []  # (method, path, headers dict, form)
        self.api_status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body, headers=()):
                data = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.handle(self, {})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                fake.handle(self, urllib.parse.parse_qs(self.rfile.read(n).decode()))

        self.server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        self.url = f"http://{LOCALHOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def handle(self, h, form):
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        one = lambda d, k: (d.get(k) or [""])[0]  # noqa: E731
        with self.lock:
            self.requests.append((h.command, url.path, dict(h.headers), {k: v[0] for k, v in form.items()}))
            login = self.next_login
        if url.path == "/login/oauth/authorize":  # the user "logs in" and approves at once
            if one(query, "client_id") != CLIENT_ID:
                return h.answer(404, {"error": "unknown client"})
            code = secrets.token_hex(10)
            with self.lock:
                self.codes[code] = (login, one(query, "redirect_uri"), one(query, "code_challenge"))
            target = one(query, "redirect_uri") + "?" + urllib.parse.urlencode({"code": code, "state": one(query, "state")})
            return h.answer(302, b"", [("Location", target)])
        if url.path == "/login/oauth/access_token":
            if one(form, "client_id") != CLIENT_ID or one(form, "client_secret") != CLIENT_SECRET:
                return h.answer(200, {"error": "incorrect_client_credentials"})
            with self.lock:
                grant = self.codes.pop(one(form, "code"), None)  # single use
            if not grant or grant[1] != one(form, "redirect_uri"):
                return h.answer(200, {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})
            verifier = one(form, "code_verifier")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant[2] and challenge != grant[2]:
                return h.answer(200, {"error": "bad_verification_code", "error_description": "PKCE verification failed"})
            token = "gho_" + secrets.token_hex(16)
            with self.lock:
                self.tokens[token] = (grant[0], "read:org,read:user,user:email")
            return h.answer(200, {"access_token": token, "token_type": "bearer", "scope": "read:org,read:user,user:email"})
        # The REST API.
        if not h.headers.get("User-Agent"):
            return h.answer(403, {"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"})
        auth = h.headers.get("Authorization", "")
        with self.lock:
            grant = self.tokens.get(auth.split(" ", 1)[-1]) if auth.startswith(("Bearer ", "token ")) else None
            status = self.api_status
        if status != 200:
            return h.answer(status, {"message": "Server Error"})
        if not grant:
            return h.answer(401, {"message": "Bad credentials"})
        user = USERS[grant[0]]
        if url.path == "/user":
            return h.answer(200, user["profile"])
        if url.path == "/user/emails":
            return h.answer(200, user["emails"])
        if url.path == "/user/orgs":
            return h.answer(200, [{"login": o, "id": i} for i, o in enumerate(user["orgs"])])
        return h.answer(404, {"message": "Not Found"})


class GitHubSignInTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.gh = FakeGitHub()
        cls.addClassCleanup(cls.gh.stop)
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        port = free_port()
        cls.base = f"http://{LOCALHOST}:{port}"

        def github(path, **extra):
            p = {"type": "browser_login", "provider": "github", "allow_http": True,
                 "authorization_endpoint": cls.gh.url + "/login/oauth/authorize",
                 "token_endpoint": cls.gh.url + "/login/oauth/access_token", "github_api_url": cls.gh.url,
                 "client_id": CLIENT_ID, "client_secret_env": "OBSGW_TEST_GITHUB_SECRET",
                 "redirect_url": cls.base + path + "/oauth2/callback", "cookie_secret_envs": ["OBSGW_TEST_GITHUB_COOKIE"],
                 "cookie_secure": False, "scopes": ["read:user", "user:email", "read:org"], "timeout_ms": 2000,
                 "identity_headers": {"subject": "X-WEBAUTH-USER", "email": "X-WEBAUTH-EMAIL", "name": "X-WEBAUTH-NAME",
                                      "groups": "X-WEBAUTH-GROUPS"}}
            p.update(extra)
            return p

        cls.gw = Gateway.start(make_config(
            {"grafana": upstream_entry(cls.up.url)},
            [route("staff", "grafana", path_prefix="/staff", policies=[
                github("/staff", cookie_name="staff_session", logout_path="/staff/sign_out",
                       allowed_email_domains=["github.example"])]),
             route("ops", "grafana", path_prefix="/ops", policies=[
                 github("/ops", cookie_name="ops_session", logout_path="/ops/sign_out"),
                 {"type": "authorize", "groups": ["obs-team"]}]),
             route("grafana", "grafana", path_prefix="/", policies=[github("")])],
            server={"listen": [f"{LOCALHOST}:{port}"]}),
            env={"OBSGW_TEST_GITHUB_SECRET": CLIENT_SECRET, "OBSGW_TEST_GITHUB_COOKIE": COOKIE_SECRET})
        cls.addClassCleanup(cls.gw.stop)

    def setUp(self):
        self.up.reset()
        with self.gh.lock:
            self.gh.requests.clear()
            self.gh.api_status = 200

    def sign_in(self, login, page):
        """(browser, status, headers, body) of the callback's answer after asking for `page` as `login`."""
        self.gh.next_login = login
        b = Browser(None)
        status, headers, _ = b.fetch(self.base + page)
        self.assertEqual(status, 302)
        authorize = headers["Location"]
        self.assertTrue(authorize.startswith(self.gh.url + "/login/oauth/authorize?"), authorize)
        status, headers, _ = b.fetch(authorize)
        self.assertEqual(status, 302)
        status, headers, body = b.fetch(headers["Location"])
        return b, status, headers, body, authorize

    def test_sign_in_with_github(self):
        b, status, headers, body, authorize = self.sign_in("octocat", "/d/home")
        self.assertEqual((status, headers["Location"]), (302, "/d/home"), body)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)
        self.assertEqual(query["client_id"], [CLIENT_ID])
        self.assertEqual(query["scope"], ["read:user user:email read:org"])
        self.assertEqual(query["code_challenge_method"], ["S256"])
        self.assertNotIn("nonce", query, "GitHub is OAuth 2.0, not OpenID Connect")
        token_requests = [r for r in self.gh.requests if r[1] == "/login/oauth/access_token"]
        self.assertEqual(len(token_requests), 1)
        _, _, token_headers, form = token_requests[0]
        self.assertEqual(form["client_secret"], CLIENT_SECRET, "GitHub takes the secret in the form")
        self.assertEqual(token_headers.get("Accept"), "application/json")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=").decode()
        self.assertEqual([challenge], query["code_challenge"])
        api = [r for r in self.gh.requests if r[1].startswith("/user")]
        self.assertEqual(sorted(r[1] for r in api), ["/user", "/user/emails", "/user/orgs"])
        self.assertTrue(all(r[2].get("User-Agent") for r in api))

        status, _, _ = b.fetch(self.base + "/d/home")
        self.assertEqual(status, 200)
        rec = self.up.requests[-1]
        self.assertEqual(rec.header("X-WEBAUTH-USER"), "octocat")
        self.assertEqual(rec.header("X-WEBAUTH-EMAIL"), "octocat@github.example", "the verified primary address")
        self.assertEqual(rec.header("X-WEBAUTH-NAME"), "The Octocat")
        self.assertEqual(rec.header("X-WEBAUTH-GROUPS"), "obs-team")

    def test_org_membership_is_required_where_configured(self):
        b, status, _, body, _ = self.sign_in("octocat", "/ops/x")
        self.assertEqual(status, 302, body)
        self.assertEqual(b.fetch(self.base + "/ops/x")[0], 200)
        b, status, _, body, _ = self.sign_in("eve", "/ops/x")
        self.assertEqual(status, 302, body)  # signed in: she is somebody ...
        status, _, body = b.fetch(self.base + "/ops/x")
        self.assertEqual(status, 403, body)  # ... but not of obs-team

    def test_a_public_profile_email_is_not_trusted(self):
        """eve shows admin@github.example on her profile; GitHub never verified it, so the domain rule refuses her."""
        b, status, _, body, _ = self.sign_in("eve", "/staff/x")
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"], "user_not_allowed")
        self.assertIsNone(b.cookie("staff_session"))
        b, status, _, body, _ = self.sign_in("octocat", "/staff/x")
        self.assertEqual(status, 302, body)

    def test_a_bad_code_answered_with_200_is_still_refused(self):
        b = Browser(None)
        state = b.start_sign_in(self.base + "/d/home")
        status, _, body = b.fetch(f"{self.base}/oauth2/callback?code=not-issued&state={state}")
        self.assertEqual(status, 401, body)
        answer = json.loads(body)
        self.assertEqual(answer["error"], "login_failed")
        self.assertIn("bad_verification_code", answer["message"])
        self.assertIsNone(b.cookie("obsgw_session"))

    def test_github_api_down_gives_503(self):
        failed0 = metric_value(self.gw.metrics(), 'obsgw_browser_logins_total{result="userinfo_failed"}') or 0
        with self.gh.lock:
            self.gh.api_status = 502
        b, status, headers, body, _ = self.sign_in("octocat", "/d/home")
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["error"], "identity_provider_unavailable")
        self.assertRegex(headers.get("Retry-After") or "", r"^\d+$")
        self.assertIsNone(b.cookie("obsgw_session"))
        self.assertEqual(metric_value(self.gw.metrics(), 'obsgw_browser_logins_total{result="userinfo_failed"}') - failed0, 1)


if __name__ == "__main__":
    unittest.main()
