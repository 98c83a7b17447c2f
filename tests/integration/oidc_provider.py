"""A real OpenID Provider for the integration tests: oidc/provider.mjs (npm oidc-provider 9) run by node.

    with OidcProvider(tls=True) as op:
        token = op.token("agent-a", "agent-a-secret", scope="logs:write")
        ... gatewayd with issuer op.issuer, JWKS op.jwks_uri, CA op.ca_file ...
        op.rotate(drop=True)
        opaque = op.token("agent-a", resource=OPAQUE_RESOURCE)  # opaque, for introspection
        alice = op.user_token("alice")                          # opaque, for userinfo (/me)

Clients: agent-a (tenant_id tenant-a), agent-b (tenant_id tenant-b), agent-multi (groups obs-tenant-acme,
obs-tenant-globex, staff; no tenant_id); the secret is "<client_id>-secret". Tokens: RFC 9068 JWTs (typ
at+jwt), aud urn:obsgw, signed RS256 (or ES256 with alg="ES256"). Unknown scopes are dropped, not refused.

Opaque tokens: resource=urn:opaque gives an opaque client_credentials token (aud urn:opaque; the introspection
answer carries tenant_id/groups but no sub: oidc-provider names only client_id for client_credentials tokens).
gateway/gateway-secret may introspect any token (op.introspect), a client its own; a client revokes its own
tokens (op.revoke). Users (any login name; alice -> tenant-a, bob -> tenant-b) log in through gateway-web with
authorization_code + PKCE and the dev login and consent forms (op.user_tokens): their access tokens are opaque,
bound to no resource, and accepted by /me, which answers sub and tenant_id.

Node.js >= 20.19 and `npm ci` in tests/integration/oidc are prerequisites (scripts/install-deps.sh test does
both). When they are missing, OidcProvider raises AssertionError so that the tests fail instead of skipping.
"""

import base64
import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import LOCALHOST, free_port, make_ca_and_leaf, terminate

OIDC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oidc")
MIN_NODE = (20, 19)
AUDIENCE = "urn:obsgw"
OPAQUE_RESOURCE = "urn:opaque"
INTROSPECTOR = ("gateway", "gateway-secret")
WEB_CLIENT = ("gateway-web", "gateway-web-secret")
WEB_REDIRECT = "http://127.0.0.1/callback"
SCOPES = "logs:write logs:read metrics:write metrics:read traces:write traces:read"
CLIENTS = {"agent-a": "agent-a-secret", "agent-b": "agent-b-secret", "agent-multi": "agent-multi-secret",
           INTROSPECTOR[0]: INTROSPECTOR[1], WEB_CLIENT[0]: WEB_CLIENT[1]}
_INSTALL_HINT = "run `scripts/install-deps.sh test` (or `npm ci` in tests/integration/oidc)"


def node_available():
    """(ok, message): whether node >= 20.19 and the oidc-provider package are installed."""
    node = shutil.which("node")
    if not node:
        return False, f"node is not on PATH; install Node.js >= 20.19 and {_INSTALL_HINT}"
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    m = re.match(r"v(\d+)\.(\d+)", out)
    if not m or (int(m[1]), int(m[2])) < MIN_NODE:
        return False, f"node {out or '?'} is too old: oidc-provider 9 needs Node.js >= 20.19 (Debian's 18 will not do)"
    if not os.path.isdir(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")):
        return False, f"tests/integration/oidc/node_modules/oidc-provider is missing; {_INSTALL_HINT}"
    return True, f"node {out}"


def decode_jwt(token):
    """(header, payload) of a compact JWS, without checking the signature."""
    def part(s):
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    header, payload, _ = token.split(".")
    return part(header), part(payload)


class OidcProvider:
    """One provider.mjs process on a free 127.0.0.1 port. stop() (or the with block) ends it by its PID."""

    def __init__(self, tls=False, alg=None, token_ttl=None, audience=None, keys_file=None, timeout=15.0, port=None,
                 sso_redirects=()):
        """port: listen there instead of on a fresh free port (for tests that point gatewayd at it first).
        sso_redirects: redirect URIs of the client gateway-sso (secret gateway-sso-secret), registered only then."""
        ok, message = node_available()
        if not ok:
            raise AssertionError(message)
        self.tmpdir = tempfile.mkdtemp(prefix="obsgw-op-")
        self.port = port or free_port()
        self.issuer = f"{'https' if tls else 'http'}://{LOCALHOST}:{self.port}"
        self.jwks_uri = self.issuer + "/jwks"
        self.keys_file = keys_file or os.path.join(self.tmpdir, "op-keys.json")
        self.ca_file = None
        env = {k: v for k, v in os.environ.items() if not k.startswith("OP_")}
        env.update(OP_PORT=str(self.port), OP_KEYS_FILE=self.keys_file)
        if tls:
            certs = make_ca_and_leaf(self.tmpdir, names=("localhost",), ips=(LOCALHOST,))
            self.ca_file = certs["ca"]
            env.update(OP_TLS_CERT=certs["cert"], OP_TLS_KEY=certs["key"])
        for name, value in (("OP_ALG", alg), ("OP_TOKEN_TTL", token_ttl), ("OP_AUDIENCE", audience),
                            ("OP_SSO_REDIRECTS", ",".join(sso_redirects) or None)):
            if value is not None:
                env[name] = str(value)
        self._ssl = ssl.create_default_context(cafile=self.ca_file) if tls else None
        self.lines = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(["node", "provider.mjs"], cwd=OIDC_DIR, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _pump(self):
        for raw in iter(self.proc.stdout.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def _wait_ready(self, timeout):
        ready = f"OP listening {self.issuer} pid={self.pid}"
        deadline = time.monotonic() + timeout
        with self._cond:
            while ready not in self.lines:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"provider.mjs exited with {self.proc.returncode}:\n{self.output()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"provider.mjs not ready within {timeout}s:\n{self.output()}")
                self._cond.wait(min(left, 0.1))

    # --- HTTP ---

    def request(self, method, path, body=None, headers=None):
        """(status, parsed JSON body) of one request to the provider; HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.issuer + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.loads(e.read() or b"null")

    def get_json(self, path):
        status, body = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {body}"
        return body

    def discovery(self):
        return self.get_json("/.well-known/openid-configuration")

    def jwks(self):
        return self.get_json("/jwks")

    def token_response(self, client_id, secret=None, scope=None, resource=None):
        """(status, JSON) of a client_credentials request, for tests that expect errors."""
        secret = CLIENTS.get(client_id, "") if secret is None else secret
        form = {"grant_type": "client_credentials"}
        if scope is not None:
            form["scope"] = scope
        if resource is not None:
            form["resource"] = resource
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.request("POST", "/token", urllib.parse.urlencode(form).encode(),
                            {"Authorization": "Basic " + basic,
                             "Content-Type": "application/x-www-form-urlencoded"})

    def token(self, client_id, secret=None, scope=SCOPES, resource=None):
        """A JWT access token (string) for client_id; the secret defaults to the client's known one."""
        status, body = self.token_response(client_id, secret, scope, resource)
        assert status == 200 and "access_token" in body, f"token for {client_id}: {status} {body}"
        return body["access_token"]

    def form_post(self, path, client_id, form, secret=None):
        """(status, JSON) of a form POST authenticated as client_id with HTTP Basic."""
        secret = CLIENTS.get(client_id, "") if secret is None else secret
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        return self.request("POST", path, urllib.parse.urlencode(form).encode(),
                            {"Authorization": "Basic " + basic,
                             "Content-Type": "application/x-www-form-urlencoded"})

    def introspect(self, token, client_id=INTROSPECTOR[0], secret=None):
        """(status, JSON) of RFC 7662 introspection, asked as `client_id` (the gateway by default)."""
        return self.form_post("/token/introspection", client_id, {"token": token, "token_type_hint": "access_token"},
                              secret)

    def revoke(self, token, client_id, secret=None):
        """RFC 7009 revocation of one of client_id's own tokens (the provider answers 200 either way)."""
        status, body = self.form_post("/token/revocation", client_id, {"token": token}, secret)
        assert status == 200, f"revoke: {status} {body}"

    def user_tokens(self, login="alice", scope="openid", prompt=None, timeout=10):
        """The token response (dict: access_token, id_token, maybe refresh_token) of a user login through
        gateway-web: authorization_code + PKCE (S256), the dev login form (any password) and, when asked, the
        consent form, driven without a browser by urllib with a cookie jar and no redirect following. Ask
        scope="openid offline_access", prompt="consent" for a refresh token."""
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = base64.urlsafe_b64encode(os.urandom(9)).decode()
        client_id, secret = WEB_CLIENT
        params = {"client_id": client_id, "response_type": "code", "redirect_uri": WEB_REDIRECT, "scope": scope,
                  "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
        if prompt:
            params["prompt"] = prompt

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None  # 302/303 come back as HTTPError and are read below

        handlers = [urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect()]
        if self._ssl:
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl))
        opener = urllib.request.build_opener(*handlers)

        def fetch(url, form=None):
            """(status, Location, body text) of one request; redirects are not followed."""
            data = urllib.parse.urlencode(form).encode() if form is not None else None
            try:
                with opener.open(urllib.request.Request(url, data=data), timeout=timeout) as resp:
                    return resp.status, resp.headers.get("Location"), resp.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                with e:
                    return e.code, e.headers.get("Location"), e.read().decode("utf-8", "replace")

        url = self.issuer + "/auth?" + urllib.parse.urlencode(params)
        for _ in range(8):  # /auth -> /interaction/uid (login) -> /auth/uid -> /interaction/uid (consent) -> ...
            status, location, text = fetch(url)
            if status == 200 and "/interaction/" in url:  # a form: read which prompt it is, and submit it
                m = re.search(r'name="prompt" value="(\w+)"', text)
                assert m, f"no prompt in the interaction page {url}: {text[:500]}"
                form = {"prompt": m[1]}
                if m[1] == "login":
                    form.update(login=login, password="any")
                status, location, text = fetch(url, form)
            assert status in (302, 303) and location, f"{url}: {status} {text[:500]}"
            url = urllib.parse.urljoin(url, location)
            if url.startswith(WEB_REDIRECT):
                break
        else:
            raise AssertionError(f"login of {login} did not come back to {WEB_REDIRECT}")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert query.get("state") == [state] and "code" in query, f"callback {url}"
        form = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": WEB_REDIRECT,
                "code_verifier": verifier}
        status, body = self.form_post("/token", client_id, form, secret)
        assert status == 200 and "access_token" in body, f"code exchange for {login}: {status} {body}"
        return body

    def user_token(self, login="alice", scope="openid"):
        """An opaque access token of `login` (through gateway-web) that /me accepts."""
        return self.user_tokens(login, scope)["access_token"]

    def rotate(self, drop=False, alg=None):
        """New signing key first in the JWKS; drop=True removes the older keys. Returns {"kid", "kids"}."""
        query = urllib.parse.urlencode({k: v for k, v in (("drop", "1" if drop else None), ("alg", alg)) if v})
        status, body = self.request("POST", "/test/rotate" + ("?" + query if query else ""))
        assert status == 200, f"rotate: {status} {body}"
        return body

    # --- lifecycle ---

    def stop(self, timeout=5.0):
        """SIGTERM, wait, SIGKILL if it does not go. Returns the exit code. Safe to call twice."""
        terminate(self.proc, timeout)
        self._reader.join(2)
        self.proc.stdout.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return self.proc.returncode
