"""A real OpenID Provider for the integration tests: oidc/provider.mjs (npm oidc-provider 9) run by node.

    with OidcProvider(tls=True) as op:
        token = op.token("agent-a", "agent-a-secret", scope="logs:write")
        ... gatewayd with issuer op.issuer, JWKS op.jwks_uri, CA op.ca_file ...
        op.rotate(drop=True)

Clients: agent-a (tenant_id tenant-a), agent-b (tenant_id tenant-b), agent-multi (groups obs-tenant-acme,
obs-tenant-globex, staff; no tenant_id); the secret is "<client_id>-secret". Tokens: RFC 9068 JWTs (typ
at+jwt), aud urn:obsgw, signed RS256 (or ES256 with alg="ES256"). Unknown scopes are dropped, not refused.

Node.js >= 20.19 and `npm ci` in tests/integration/oidc are prerequisites (scripts/install-deps.sh test does
both). When they are missing, OidcProvider raises AssertionError so that the tests fail instead of skipping.
"""

import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import LOCALHOST, free_port, make_ca_and_leaf

OIDC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oidc")
MIN_NODE = (20, 19)
AUDIENCE = "urn:obsgw"
SCOPES = "logs:write logs:read metrics:write metrics:read traces:write traces:read"
CLIENTS = {"agent-a": "agent-a-secret", "agent-b": "agent-b-secret", "agent-multi": "agent-multi-secret"}
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

    def __init__(self, tls=False, alg=None, token_ttl=None, audience=None, keys_file=None, timeout=15.0, port=None):
        """port: listen there instead of on a fresh free port (for tests that point gatewayd at it first)."""
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
        for name, value in (("OP_ALG", alg), ("OP_TOKEN_TTL", token_ttl), ("OP_AUDIENCE", audience)):
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

    def rotate(self, drop=False, alg=None):
        """New signing key first in the JWKS; drop=True removes the older keys. Returns {"kid", "kids"}."""
        query = urllib.parse.urlencode({k: v for k, v in (("drop", "1" if drop else None), ("alg", alg)) if v})
        status, body = self.request("POST", "/test/rotate" + ("?" + query if query else ""))
        assert status == 200, f"rotate: {status} {body}"
        return body

    # --- lifecycle ---

    def stop(self, timeout=5.0):
        """SIGTERM, wait, SIGKILL if it does not go. Returns the exit code. Safe to call twice."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._reader.join(2)
        self.proc.stdout.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return self.proc.returncode
