"""Browser single sign-on with GitHub: gatewayd's browser_login authenticator with "provider": "github" in front of
an echo upstream standing in for Grafana, against github_fake.py (GitHub's OAuth web flow and REST API, faked).

A browser is emulated with urllib and a cookie jar that follows no redirect by itself (test_browser_login.Browser),
so every hop is seen: the page asked for -> 302 to the fake's /login/oauth/authorize (state, PKCE S256, no nonce)
with a login cookie -> the fake signs in `next_login` and sends the browser (302) to gatewayd's callback ->
gatewayd exchanges the code (client secret in the form), reads /user, /user/emails and /user/orgs -> 302 back to
the page with the session cookie -> the page, forwarded with the identity in Grafana's auth-proxy headers.

Each route signs in with its own OAuth app, as a GitHub OAuth app has one callback URL: gw-main (callback
/oauth2/callback), gw-restricted (/restricted/oauth2/callback) and gw-other (http://127.0.0.1/, a loopback
callback: any port, any path) for the fault routes /slow (timeout_ms 300) and /apidown (github_api_url on a port
where nothing listens).

The fake's users (github_fake.default_users): octocat (octocat@github.example primary and verified, org obs-team),
eve (primary eve@evil.example NOT verified; her public profile email says admin@github.example), mona
(mona@elsewhere.example, verified), carol (carol@other.example, verified), hubber (hubber@github.example, 35 orgs),
orgful (105 orgs).
"""

import json
import unittest
import urllib.error
import urllib.parse
import urllib.request

from github_fake import GitHubFake, s256
from harness import LOCALHOST, Gateway, free_port, make_config, metric_value, request, route, upstream_entry
from browser_client import Browser
from upstream import EchoUpstream

COOKIE_ENV = "OBSGW_TEST_GH_COOKIE_SECRET"
COOKIE_SECRET = "test-github-cookie-secret-0123456789abcdef"
APPS = {  # client_id -> (secret, environment variable gatewayd reads it from)
    "gw-main": ("gw-main-secret-5f3a", "OBSGW_TEST_GH_MAIN_SECRET"),
    "gw-restricted": ("gw-restricted-secret-9c1d", "OBSGW_TEST_GH_RESTRICTED_SECRET"),
    "gw-other": ("gw-other-secret-77ab", "OBSGW_TEST_GH_OTHER_SECRET"),
}
SCOPES = ["read:user", "user:email", "read:org"]
HEADERS = {"subject": "X-WEBAUTH-USER", "email": "X-WEBAUTH-EMAIL", "name": "X-WEBAUTH-NAME",
           "groups": "X-WEBAUTH-GROUPS"}
API_PATHS = ("/user", "/user/emails", "/user/orgs")


def logins(result):
    return f'obsgw_browser_logins_total{{result="{result}"}}'


def query_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)


class BrowserLoginGitHubTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.base = f"http://{LOCALHOST}:{cls.port}"
        cls.gh = GitHubFake()
        cls.addClassCleanup(cls.gh.stop)
        cls.gh.register_app("gw-main", APPS["gw-main"][0], cls.base + "/oauth2/callback")
        cls.gh.register_app("gw-restricted", APPS["gw-restricted"][0], cls.base + "/restricted/oauth2/callback")
        cls.gh.register_app("gw-other", APPS["gw-other"][0], f"http://{LOCALHOST}/")
        cls.up = EchoUpstream()
        cls.addClassCleanup(cls.up.stop)
        cls.dead_api = f"http://{LOCALHOST}:{free_port()}"  # nothing listens there
        env = {COOKIE_ENV: COOKIE_SECRET}
        env.update({var: secret for secret, var in APPS.values()})
        cls.gw = Gateway.start(cls.config(), env=env)
        cls.addClassCleanup(cls.gw.stop)

    @classmethod
    def sso(cls, client_id="gw-main", prefix="", **overrides):
        p = {"type": "browser_login", "provider": "github",
             "authorization_endpoint": cls.gh.authorize_url, "token_endpoint": cls.gh.token_url,
             "github_api_url": cls.gh.url, "allow_http": True,
             "client_id": client_id, "client_secret_env": APPS[client_id][1],
             "redirect_url": f"{cls.base}{prefix}/oauth2/callback", "cookie_secret_envs": [COOKIE_ENV],
             "cookie_secure": False, "scopes": SCOPES, "identity_headers": HEADERS}
        if prefix:
            p.update(cookie_name=prefix.strip("/") + "_session", logout_path=prefix + "/oauth2/sign_out")
        p.update(overrides)
        return p

    @classmethod
    def config(cls):
        return make_config(
            {"grafana": upstream_entry(cls.up.url)},
            [route("restricted", "grafana", path_prefix="/restricted", policies=[cls.sso(
                "gw-restricted", "/restricted", allowed_email_domains=["github.example"],
                allowed_users=["mona", "admin@github.example"])]),
             route("slow", "grafana", path_prefix="/slow", policies=[cls.sso("gw-other", "/slow", timeout_ms=300)]),
             route("apidown", "grafana", path_prefix="/apidown",
                   policies=[cls.sso("gw-other", "/apidown", github_api_url=cls.dead_api)]),
             route("grafana", "grafana", path_prefix="/", policies=[cls.sso()])],
            server={"listen": [f"{LOCALHOST}:{cls.port}"]})

    def setUp(self):
        self.up.reset()
        self.gh.reset()
        self.addCleanup(self.gh.reset)

    def counter(self, series):
        return metric_value(self.gw.metrics(), series) or 0

    # --- the flow ---

    def start(self, page="/d/home?orgId=1", browser=None):
        """Asks for `page` without a session: returns (browser, authorize URL) after checking the redirect."""
        b = browser or Browser(None)
        status, headers, body = b.fetch(self.base + page)
        self.assertEqual(status, 302, body)
        url = headers["Location"]
        self.assertTrue(url.startswith(self.gh.authorize_url + "?"), url)
        return b, url

    def authorize(self, b, url, login):
        """The fake signs `login` in: returns the callback URL it sends the browser to."""
        self.gh.next_login = login
        status, headers, body = b.fetch(url)
        self.assertEqual(status, 302, body)
        callback = headers["Location"]
        self.assertTrue(callback.startswith(self.base + "/"), callback)
        return callback

    def sign_in(self, login, page="/d/home?orgId=1", expect_success=True):
        """A whole sign-in from asking for `page`: returns (browser, authorize query, callback answer)."""
        b, url = self.start(page)
        self.callback_url = self.authorize(b, url, login)
        status, headers, body = b.fetch(self.callback_url)
        if expect_success:
            self.assertEqual(status, 302, body)
            self.assertEqual(headers["Location"], page)
        return b, query_of(url), (status, headers, body)

    def callback_with(self, b, url, code):
        """Opens the callback of the sign-in started at authorize `url` with a code of the test's choosing."""
        state = query_of(url)["state"][0]
        redirect = query_of(url)["redirect_uri"][0]
        return b.fetch(f"{redirect}?code={urllib.parse.quote(code)}&state={state}")

    # --- tests ---

    def test_authorize_redirect_carries_the_flow_parameters(self):
        b, url = self.start("/d/home?orgId=1")
        q = query_of(url)
        for name in ("client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"):
            self.assertEqual(len(q.get(name, [])), 1, f"{name} once in {url}")
        self.assertEqual(q["client_id"], ["gw-main"])
        self.assertEqual(q["redirect_uri"], [self.base + "/oauth2/callback"])
        self.assertEqual(q["scope"], ["read:user user:email read:org"])
        self.assertEqual(q["code_challenge_method"], ["S256"])
        self.assertRegex(q["code_challenge"][0], r"^[A-Za-z0-9_-]{43}$")
        self.assertGreaterEqual(len(q["state"][0]), 16)
        self.assertNotIn("nonce", q, "GitHub has no ID token: no nonce")
        cookie = next(c for c in b.jar if c.name.startswith("obsgw_session_login_"))
        self.assertEqual(cookie.path, "/oauth2/callback")
        # A second sign-in gets its own state and challenge.
        _, url2 = self.start("/d/home?orgId=1")
        self.assertNotEqual(query_of(url2)["state"], q["state"])
        self.assertNotEqual(query_of(url2)["code_challenge"], q["code_challenge"])

    def test_sign_in_passes_the_github_identity_to_the_app(self):
        ok0 = self.counter(logins("success"))
        b, q, (status, headers, _) = self.sign_in("octocat")
        self.assertEqual(self.counter(logins("success")) - ok0, 1)
        session = next(c for c in headers.get_all("Set-Cookie") if c.startswith("obsgw_session="))
        self.assertIn("HttpOnly", session)
        self.assertNotIn("octocat", b.cookie("obsgw_session"))

        # The code exchange: the client secret in the form, and the verifier of the challenge sent to authorize.
        exchanges = self.gh.calls_to("/login/oauth/access_token")
        self.assertEqual(len(exchanges), 1)
        ex = exchanges[0]
        self.assertEqual(ex.f("client_id"), "gw-main")
        self.assertEqual(ex.f("client_secret"), APPS["gw-main"][0])
        self.assertEqual(ex.f("code"), query_of(self.callback_url)["code"][0])
        self.assertEqual(ex.f("redirect_uri"), self.base + "/oauth2/callback")
        self.assertEqual(s256(ex.f("code_verifier")), q["code_challenge"][0])
        self.assertIsNone(ex.header("Authorization"), "GitHub takes the credentials in the form")
        self.assertIn("application/json", ", ".join(v for n, v in ex.headers if n.lower() == "accept"))
        token = json.loads(ex.answer)["access_token"]

        # The REST API calls: the token, and a User-Agent (GitHub refuses requests without one).
        for path in API_PATHS:
            calls = self.gh.calls_to(path)
            self.assertEqual(len(calls), 1, path)
            self.assertEqual(calls[0].status, 200, path)
            self.assertTrue((calls[0].header("User-Agent") or "").strip(), f"{path} without User-Agent")
            self.assertEqual(calls[0].header("Authorization"), "Bearer " + token)

        cookies = "grafana_session=g1; obsgw_session=" + b.cookie("obsgw_session")
        status, _, body = b.fetch(self.base + "/d/home?orgId=1",
                                  headers={"X-WEBAUTH-USER": "admin", "X-WEBAUTH-GROUPS": "admins", "Cookie": cookies})
        self.assertEqual(status, 200, body)
        rec = self.up.requests[-1]
        self.assertEqual(rec.target, "/d/home?orgId=1")
        self.assertEqual(rec.header_all("X-WEBAUTH-USER"), ["octocat"], "the client's copy is replaced")
        self.assertEqual(rec.header("X-WEBAUTH-EMAIL"), "octocat@github.example", "the primary verified address")
        self.assertEqual(rec.header("X-WEBAUTH-NAME"), "The Octocat")
        self.assertEqual(rec.header_all("X-WEBAUTH-GROUPS"), ["obs-team"])
        self.assertEqual(rec.header_all("Cookie"), ["grafana_session=g1"], "the session stays with the gateway")
        self.assertTrue(any(l.get("msg") == "browser sign-in" and l.get("user") == "octocat" for l in self.gw.lines))

        # Later requests are served from the session: GitHub is not asked again.
        status, _, _ = b.fetch(self.base + "/api/dashboards", headers={"Accept": "application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(len(self.gh.calls_to("/user")), 1)

    def test_spoofed_public_email_does_not_pass_an_email_rule(self):
        """eve's profile says admin@github.example (listed in allowed_users, and in an allowed domain); her only
        address GitHub verified nothing of, so she is refused."""
        denied0 = self.counter(logins("denied"))
        b, _, (status, _, body) = self.sign_in("eve", page="/restricted/dash", expect_success=False)
        self.assertEqual(status, 403, body)
        answer = json.loads(body)
        self.assertEqual(answer["error"], "user_not_allowed")
        self.assertIn("eve has no verified email address", answer["message"])
        self.assertIsNone(b.cookie("restricted_session"))
        self.assertFalse(any(n.startswith("restricted_session_login_") for n in b.cookies()), "login cookie cleared")
        self.assertEqual(self.counter(logins("denied")) - denied0, 1)
        self.assertEqual(json.loads(self.gh.calls_to("/user")[-1].answer)["email"], "admin@github.example")

    def test_spoofed_public_email_is_not_passed_on_as_the_users_email(self):
        """On a route without rules eve may sign in, but the app (Grafana maps X-WEBAUTH-EMAIL to an account) must
        not be told she is admin@github.example: GitHub verified no such address of hers."""
        b, _, _ = self.sign_in("eve")
        status, _, _ = b.fetch(self.base + "/d/home")
        self.assertEqual(status, 200)
        rec = self.up.requests[-1]
        self.assertEqual(rec.header("X-WEBAUTH-USER"), "eve")
        self.assertNotEqual(rec.header("X-WEBAUTH-EMAIL"), "admin@github.example",
                            "an unverified profile email reached the app as the user's email")

    def test_allowed_email_domains_and_users(self):
        # octocat: verified primary in github.example.
        b, _, _ = self.sign_in("octocat", page="/restricted/dash")
        status, _, _ = b.fetch(self.base + "/restricted/dash")
        self.assertEqual(status, 200)
        self.assertEqual(self.up.requests[-1].header("X-WEBAUTH-USER"), "octocat")
        self.assertEqual(self.gh.calls_to("/login/oauth/access_token")[-1].f("client_id"), "gw-restricted")
        # mona: another domain, but listed by login name.
        b, _, _ = self.sign_in("mona", page="/restricted/dash")
        status, _, _ = b.fetch(self.base + "/restricted/dash")
        self.assertEqual(status, 200)
        self.assertEqual(self.up.requests[-1].header("X-WEBAUTH-EMAIL"), "mona@elsewhere.example")
        self.assertEqual(self.up.requests[-1].header("X-WEBAUTH-GROUPS"), "obs-team,art")
        # carol: verified, but neither domain nor name is admitted.
        b, _, (status, _, body) = self.sign_in("carol", page="/restricted/dash", expect_success=False)
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"], "user_not_allowed")
        self.assertIn("carol@other.example is not allowed", json.loads(body)["message"])
        # The main route's session opens nothing on the restricted one.
        b, _, _ = self.sign_in("carol")
        r = request(self.port, "GET", "/restricted/dash",
                    headers=[("Cookie", "restricted_session=" + b.cookie("obsgw_session"))])
        self.assertEqual(r.status, 401)

    def test_a_code_github_does_not_know_is_refused(self):
        failed0 = self.counter(logins("token_exchange_failed"))
        b, url = self.start()
        status, _, body = self.callback_with(b, url, "made-up-code")
        self.assertEqual(status, 401, body)
        answer = json.loads(body)
        self.assertEqual(answer["error"], "login_failed")
        self.assertIn("bad_verification_code", answer["message"])
        ex = self.gh.calls_to("/login/oauth/access_token")[-1]
        self.assertEqual(ex.status, 200, "GitHub answers a refused code with HTTP 200")
        self.assertEqual(json.loads(ex.answer)["error"], "bad_verification_code")
        self.assertIsNone(b.cookie("obsgw_session"))
        self.assertFalse(any(n.startswith("obsgw_session_login_") for n in b.cookies()), "login cookie cleared")
        self.assertEqual(self.counter(logins("token_exchange_failed")) - failed0, 1)

    def test_a_spent_code_is_refused(self):
        b, _, _ = self.sign_in("octocat")
        code = query_of(self.callback_url)["code"][0]
        # The same browser starts another sign-in and offers the spent code with the new state.
        b.jar.clear()
        _, url = self.start(browser=b)
        status, _, body = self.callback_with(b, url, code)
        self.assertEqual(status, 401, body)
        self.assertIn("bad_verification_code", json.loads(body)["message"])
        self.assertIsNone(b.cookie("obsgw_session"))

    def test_a_code_of_another_sign_in_fails_pkce(self):
        """A code obtained for one sign-in, brought to the callback of another: the verifier in that sign-in's
        cookie does not match the code's challenge, and GitHub refuses it."""
        b1, url1 = self.start()
        code = query_of(self.authorize(b1, url1, "octocat"))["code"][0]
        b2, url2 = self.start()
        status, _, body = self.callback_with(b2, url2, code)
        self.assertEqual(status, 401, body)
        self.assertEqual(json.loads(body)["error"], "login_failed")
        ex = self.gh.calls_to("/login/oauth/access_token")[-1]
        self.assertEqual(ex.f("code"), code)
        self.assertNotEqual(s256(ex.f("code_verifier")), query_of(url1)["code_challenge"][0])
        self.assertIn("code_verifier", json.loads(ex.answer)["error_description"])
        self.assertIsNone(b2.cookie("obsgw_session"))

    def test_an_expired_code_is_refused(self):
        b, url = self.start()
        callback = self.authorize(b, url, "octocat")
        self.gh.expire_codes()
        status, _, body = b.fetch(callback)
        self.assertEqual(status, 401, body)
        self.assertIn("bad_verification_code", json.loads(body)["message"])

    def test_a_rotated_client_secret_fails_the_sign_in(self):
        """The app's secret was reset at GitHub, gatewayd still has the old one: incorrect_client_credentials."""
        self.gh.register_app("gw-main", "reset-at-github", self.base + "/oauth2/callback")
        self.addCleanup(self.gh.register_app, "gw-main", APPS["gw-main"][0], self.base + "/oauth2/callback")
        b, _, (status, _, body) = self.sign_in("octocat", expect_success=False)
        self.assertEqual(status, 401, body)
        self.assertEqual(json.loads(body)["error"], "login_failed")
        self.assertIn("incorrect_client_credentials", json.loads(body)["message"])
        self.assertEqual(self.gh.calls_to("/login/oauth/access_token")[-1].status, 200)
        self.assertEqual(self.gh.calls_to("/user"), [], "no API call without a token")

    def test_github_refusing_an_unverified_user_fails_the_sign_in(self):
        self.gh.refuse_unverified_primary = True
        b, _, (status, _, body) = self.sign_in("eve", expect_success=False)
        self.assertEqual(status, 401, body)
        self.assertIn("unverified_user_email", json.loads(body)["message"])
        self.assertIsNone(b.cookie("obsgw_session"))

    def test_the_user_cancelling_at_github(self):
        self.gh.deny_next = True
        b, url = self.start()
        status, headers, _ = b.fetch(url)
        self.assertEqual(status, 302)
        self.assertEqual(query_of(headers["Location"])["error"], ["access_denied"])
        status, _, body = b.fetch(headers["Location"])
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"], "login_refused")
        self.assertEqual(self.gh.calls_to("/login/oauth/access_token"), [])

    def assert_unavailable(self, answer, browser, cookie="obsgw_session"):
        status, headers, body = answer
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["error"], "identity_provider_unavailable")
        self.assertEqual(headers["Retry-After"], "5")
        self.assertIsNone(browser.cookie(cookie))
        self.assertFalse(any(n.startswith(cookie + "_login_") for n in browser.cookies()), "login cookie cleared")

    def test_github_api_failing(self):
        """Any of the three API calls failing is an outage (docs/configuration.md: 503 when "GitHub's API
        unreachable or failing"), not a user without an email or without organisations."""
        for path in (*API_PATHS, "every path"):
            with self.subTest(path=path):
                self.gh.reset()
                if path == "every path":
                    self.gh.api_status = 500
                else:
                    self.gh.path_status = {path: 502 if path == "/user/emails" else 500}
                failed0 = self.counter(logins("userinfo_failed"))
                b, _, answer = self.sign_in("octocat", expect_success=False)
                self.assertEqual(self.gh.calls_to(path if path in API_PATHS else "/user")[-1].status,
                                 self.gh.path_status.get(path, self.gh.api_status))
                self.assert_unavailable(answer, b)
                self.assertEqual(self.counter(logins("userinfo_failed")) - failed0, 1)

    def test_github_api_unreachable(self):
        b, _, answer = self.sign_in("octocat", page="/apidown/x", expect_success=False)
        self.assert_unavailable(answer, b, "apidown_session")
        self.assertEqual(len(self.gh.calls_to("/login/oauth/access_token")), 1, "the code was exchanged")
        self.assertEqual(self.gh.calls_to("/user"), [])

    def test_github_api_too_slow(self):
        self.gh.api_delay = 2.0  # the route allows 300 ms a call
        b, _, answer = self.sign_in("octocat", page="/slow/x", expect_success=False)
        self.assert_unavailable(answer, b, "slow_session")
        self.assertEqual(len(self.gh.calls_to("/user")), 1)

    def test_organisations_become_groups(self):
        """/user/orgs is paginated (30 a page by default): hubber's 35 organisations all reach the app; of orgful's
        105, the first 100 (docs/configuration.md: "the first 100")."""
        for login, expected in (("hubber", [f"org-{i:02d}" for i in range(1, 36)]),
                                ("orgful", [f"o{i:03d}" for i in range(1, 101)])):
            with self.subTest(login=login):
                b, _, _ = self.sign_in(login)
                status, _, _ = b.fetch(self.base + "/d/home?orgId=1")
                self.assertEqual(status, 200)
                groups = (self.up.requests[-1].header("X-WEBAUTH-GROUPS") or "").split(",")
                self.assertEqual(groups, expected,
                                 f"orgs requests: {[c.target for c in self.gh.calls_to('/user/orgs')]}")

    def test_a_user_who_withholds_read_org(self):
        """GitHub lets users untick requested scopes. Without read:org /user/orgs answers 403: that is the user's
        choice, not an outage, and retrying in 5 s (what a 503 with Retry-After says) will never help."""
        self.gh.granted_scopes = ["read:user", "user:email"]
        b, _, (status, _, body) = self.sign_in("octocat", expect_success=False)
        self.assertEqual(self.gh.calls_to("/user/orgs")[-1].status, 403)
        self.assertNotEqual(status, 503, f"reported as identity_provider_unavailable: {body}")
        self.assertIn(status, (302, 403), body)

    def test_a_user_who_withholds_user_email(self):
        """Without user:email /user/emails answers 404: no verified address, so an email rule refuses."""
        self.gh.granted_scopes = ["read:user", "read:org"]
        b, _, (status, _, body) = self.sign_in("octocat", page="/restricted/dash", expect_success=False)
        self.assertEqual(self.gh.calls_to("/user/emails")[-1].status, 404)
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["error"], "user_not_allowed")

    def test_sign_out(self):
        b, _, _ = self.sign_in("octocat", page="/restricted/dash")
        status, headers, _ = b.fetch(self.base + "/restricted/oauth2/sign_out")
        self.assertEqual(status, 302)
        self.assertIsNone(b.cookie("restricted_session"))
        status, headers, _ = b.fetch(self.base + "/restricted/dash")
        self.assertEqual(status, 302)
        self.assertTrue(headers["Location"].startswith(self.gh.authorize_url + "?"))
        self.assertEqual(query_of(headers["Location"])["client_id"], ["gw-restricted"])


class GitHubFakeTest(unittest.TestCase):
    """The fake itself behaves as GitHub documents it (no gatewayd)."""

    @classmethod
    def setUpClass(cls):
        cls.gh = GitHubFake()
        cls.addClassCleanup(cls.gh.stop)
        cls.cb = f"http://{LOCALHOST}:9/cb"
        cls.gh.register_app("app", "app-secret", cls.cb)

    def setUp(self):
        self.gh.reset()

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def fetch(self, path, form=None, headers=None):
        opener = urllib.request.build_opener(self._NoRedirect())
        opener.addheaders = []  # no default User-Agent: the tests say when one is sent
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(self.gh.url + path, data=data, headers=headers or {})
        try:
            with opener.open(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read()

    def code(self, login="octocat", scope="read:user user:email read:org", verifier="v" * 43, **params):
        self.gh.next_login = login
        q = {"client_id": "app", "redirect_uri": self.cb, "scope": scope, "state": "s" * 20}
        if verifier:
            q.update(code_challenge=s256(verifier), code_challenge_method="S256")
        q.update(params)
        status, headers, _ = self.fetch("/login/oauth/authorize?" + urllib.parse.urlencode(q))
        self.assertEqual(status, 302)
        self.assertTrue(headers["Location"].startswith(q["redirect_uri"] + "?"), headers["Location"])
        self.assertEqual(query_of(headers["Location"])["state"], ["s" * 20])
        return query_of(headers["Location"])["code"][0]

    def exchange(self, code, verifier="v" * 43, secret="app-secret", accept="application/json", **extra):
        form = {"client_id": "app", "client_secret": secret, "code": code, "redirect_uri": self.cb}
        if verifier:
            form["code_verifier"] = verifier
        form.update(extra)
        status, headers, body = self.fetch("/login/oauth/access_token", form, {"Accept": accept} if accept else {})
        self.assertEqual(status, 200, "errors too come with 200")
        return json.loads(body) if accept == "application/json" else body.decode()

    def api(self, path, token, scheme="Bearer", ua="test"):
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        if ua:
            headers["User-Agent"] = ua
        return self.fetch(path, headers=headers)

    def test_authorize_refusals(self):
        status, _, _ = self.fetch("/login/oauth/authorize?client_id=nobody&state=x")
        self.assertEqual(status, 404)
        for bad in (f"http://{LOCALHOST}:10/cb", f"http://{LOCALHOST}:9/other", "https://127.0.0.1:9/cb",
                    f"http://{LOCALHOST}:9/cb/../other", "http://evil.example:9/cb"):
            with self.subTest(redirect_uri=bad):
                status, headers, _ = self.fetch("/login/oauth/authorize?" + urllib.parse.urlencode(
                    {"client_id": "app", "redirect_uri": bad, "state": "st"}))
                self.assertEqual(status, 302)
                self.assertTrue(headers["Location"].startswith(self.cb + "?"), "to the registered callback")
                self.assertEqual(query_of(headers["Location"])["error"], ["redirect_uri_mismatch"])
                self.assertEqual(query_of(headers["Location"])["state"], ["st"])
        self.code(redirect_uri=self.cb + "/sub")  # a subdirectory of the callback is fine
        status, _, _ = self.fetch("/login/oauth/authorize?client_id=app&code_challenge=" + "a" * 43 +
                                  "&code_challenge_method=plain")
        self.assertEqual(status, 400)

    def test_code_exchange(self):
        code = self.code()
        bad = self.exchange(code, secret="wrong")
        self.assertEqual(bad["error"], "incorrect_client_credentials")
        answer = self.exchange(code)
        self.assertEqual(answer["token_type"], "bearer")
        self.assertEqual(answer["scope"], "read:org,read:user,user:email")
        self.assertTrue(answer["access_token"].startswith("gho_"))
        self.assertEqual(self.exchange(code)["error"], "bad_verification_code", "single use")
        self.assertEqual(self.exchange(self.code(), verifier="w" * 43)["error"], "bad_verification_code")
        self.assertEqual(self.exchange(self.code(), verifier=None)["error"], "bad_verification_code")
        self.assertIn("access_token", self.exchange(self.code(verifier=None), verifier=None), "PKCE is optional")
        self.assertEqual(self.exchange(self.code(), redirect_uri=self.cb + "/x")["error"], "redirect_uri_mismatch")
        code = self.code()
        self.gh.expire_codes()
        self.assertEqual(self.exchange(code)["error"], "bad_verification_code")
        form = self.exchange(self.code(), accept=None)
        self.assertRegex(form, r"^access_token=gho_\w+&token_type=bearer&scope=read%3Aorg%2Cread%3Auser%2Cuser%3Aemail$")
        self.gh.refuse_unverified_primary = True
        self.assertEqual(self.exchange(self.code("eve"))["error"], "unverified_user_email")
        self.assertIn("access_token", self.exchange(self.code("octocat")))

    def test_api(self):
        token = self.exchange(self.code("octocat", scope="user,read:org"))["access_token"]
        status, _, body = self.api("/user", token, ua=None)
        self.assertEqual(status, 403)
        self.assertIn(b"User-Agent", body)
        self.assertEqual(self.api("/user", None)[0], 401)
        self.assertEqual(json.loads(self.api("/user", "gho_unknown")[2])["message"], "Bad credentials")
        status, headers, body = self.api("/user", token, scheme="token")
        self.assertEqual(status, 200)
        self.assertEqual(headers["X-OAuth-Scopes"], "read:org, user")
        self.assertEqual(json.loads(body)["login"], "octocat")
        self.assertIsNone(json.loads(body)["email"])
        status, _, body = self.api("/user/emails", token)
        self.assertEqual(status, 200, "user includes user:email")
        self.assertIn({"email": "octocat@github.example", "primary": True, "verified": True, "visibility": "private"},
                      json.loads(body))
        narrow = self.exchange(self.code("eve", scope="read:user"))["access_token"]
        self.assertEqual(self.api("/user/emails", narrow)[0], 404)
        self.assertEqual(self.api("/user/orgs", narrow)[0], 403)
        self.assertEqual(json.loads(self.api("/user", narrow)[2])["email"], "admin@github.example")
        hub = self.exchange(self.code("hubber", scope="read:org"))["access_token"]
        status, headers, body = self.api("/user/orgs", hub)
        self.assertEqual(len(json.loads(body)), 30)
        self.assertIn('rel="next"', headers["Link"])
        self.assertEqual(len(json.loads(self.api("/user/orgs?page=2", hub)[2])), 5)
        self.assertEqual(len(json.loads(self.api("/user/orgs?per_page=100", hub)[2])), 35)
        self.gh.api_status = 500
        self.assertEqual(self.api("/user", hub)[0], 500)
        self.assertTrue(all(c.status for c in self.gh.calls), "every request recorded with its answer")


if __name__ == "__main__":
    unittest.main()
