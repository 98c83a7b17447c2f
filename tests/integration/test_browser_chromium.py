"""A real browser signs in: Debian's headless Chromium, driven by playwright-core (browser/sign_in.mjs), opens a
page behind gatewayd's browser_login, is sent to the real OpenID provider (oidc_provider.py), fills its login and
consent forms, comes back through the callback and uses the app; then signs out.

This checks what only a browser decides: that it follows the redirects, keeps and sends the login cookie on the
callback (SameSite=Lax on a cross-port redirect), stores the HttpOnly session cookie out of reach of scripts, and
sends it with the app's own fetch() calls. Chromium and playwright-core are prerequisites (scripts/install-deps.sh
test installs both); when missing, the test fails rather than skips."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import LOCALHOST, Gateway, free_port, make_config, route, upstream_entry
from oidc_provider import OidcProvider
from upstream import EchoUpstream

BROWSER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class ChromiumSignInTest(unittest.TestCase):

    def test_chromium_signs_in_uses_the_app_and_signs_out(self):
        self.assertTrue(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: run scripts/install-deps.sh test")
        self.assertTrue(os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")),
                        "tests/integration/browser/node_modules is missing: run scripts/install-deps.sh test")
        port = free_port()
        base = f"http://{LOCALHOST}:{port}"
        op = OidcProvider(sso_redirects=[base + "/oauth2/callback"])
        self.addCleanup(op.stop)
        up = EchoUpstream()
        self.addCleanup(up.stop)
        policy = {"type": "browser_login", "issuer": op.issuer, "allow_http": True, "client_id": "gateway-sso",
                  "client_secret_env": "OBSGW_TEST_SSO_CLIENT_SECRET", "redirect_url": base + "/oauth2/callback",
                  "cookie_secret_envs": ["OBSGW_TEST_SSO_COOKIE_SECRET"], "cookie_secure": False,
                  "identity_headers": {"subject": "X-WEBAUTH-USER", "email": "X-WEBAUTH-EMAIL",
                                       "name": "X-WEBAUTH-NAME"}}
        gw = Gateway.start(make_config({"grafana": upstream_entry(up.url)},
                                       [route("grafana", "grafana", path_prefix="/", policies=[policy])],
                                       server={"listen": [f"{LOCALHOST}:{port}"]}),
                           env={"OBSGW_TEST_SSO_CLIENT_SECRET": "gateway-sso-secret",
                                "OBSGW_TEST_SSO_COOKIE_SECRET": "chromium-test-cookie-secret-0123456789"})
        self.addCleanup(gw.stop)

        env = dict(os.environ, START_URL=base + "/d/home?orgId=1", LOGIN="alice", CHROMIUM=CHROMIUM)
        # Chromium writes its profile under HOME: a throwaway one.
        env["HOME"] = self._tmpdir()
        p = subprocess.run(["node", "sign_in.mjs"], cwd=BROWSER_DIR, env=env, capture_output=True, text=True,
                           timeout=90)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        seen = json.loads(p.stdout.strip().splitlines()[-1])

        self.assertTrue(seen["login_page"].startswith(op.issuer + "/interaction/"), seen)
        self.assertEqual(seen["final_url"], base + "/d/home?orgId=1", seen["hops"])
        self.assertEqual(seen["page"]["target"], "/d/home?orgId=1")
        headers = {n.lower(): v for n, v in seen["page"]["headers"]}
        self.assertEqual(headers.get("x-webauth-user"), "alice")
        self.assertEqual(headers.get("x-webauth-email"), "alice@example.com")
        self.assertEqual(headers.get("x-webauth-name"), "Alice Liddell")
        self.assertNotIn("obsgw_session", headers.get("cookie", ""), "the session stays with the gateway")
        session = [c for c in seen["cookies"] if c["name"] == "obsgw_session"]
        self.assertEqual(len(session), 1, seen["cookies"])
        self.assertTrue(session[0]["httpOnly"])
        self.assertEqual(session[0]["sameSite"], "Lax")
        self.assertFalse([c for c in seen["cookies"] if c["name"].startswith("obsgw_session_login_")],
                         "the login cookie is gone once signed in")
        self.assertNotIn("obsgw_session", seen["document_cookie"], "scripts cannot read the session")
        self.assertEqual(seen["api_status"], 200, "the app's fetch() carries the session")
        self.assertEqual(up.requests[-1].header("X-WEBAUTH-USER"), "alice")
        # Signed out: the gateway cleared the session, so the page it sends the browser to ("/") goes to the
        # provider again -- which still has alice's own session and signs her straight back in, without a form.
        # (Ending the provider's session too is post_logout_redirect pointing at its logout page.)
        hops = seen["sign_out_hops"]
        self.assertEqual(hops[:2], [f"302 {base}/oauth2/sign_out", f"302 {base}/"], hops)
        self.assertTrue(hops[2].startswith(f"303 {op.issuer}/auth?"), hops)
        self.assertTrue(hops[3].startswith(f"302 {base}/oauth2/callback?"), hops)
        self.assertEqual(seen["after_sign_out"], base + "/")
        self.assertTrue(any(l.get("msg") == "browser sign-in" and l.get("user") == "alice" for l in gw.lines))

    def _tmpdir(self):
        d = tempfile.mkdtemp(prefix="obsgw-chromium-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


if __name__ == "__main__":
    unittest.main()
