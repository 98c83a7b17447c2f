"""benchmarks/tools/slot_gateway.sh: gatewayd started the way an external benchmark harness starts "the
gateway" (the GATEWAY_CMD contract: GATEWAY_* variables in, a foreground process that SIGTERM stops). The test's
own RSA key and JWKS stand in for the harness's, and its tokens carry the claims the harness's do (iss, aud, sub,
tenant)."""

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import GATEWAYD, LOCALHOST, REPO, Gateway, free_port, request
from upstream import EchoUpstream

SLOT = os.path.join(REPO, "benchmarks", "tools", "slot_gateway.sh")
ISSUER = "https://issuer.slot.invalid/"
AUDIENCE = "gatewayd"
KID = "slot-rsa-1"
SIGNATURE_HEADERS = ("X-Gateway-Timestamp", "X-Gateway-Key-Id", "X-Gateway-Signed-Headers",
                     "X-Gateway-Content-SHA256", "X-Gateway-Signature")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SlotKeys:
    """An RSA key, its JWKS file and RS256 tokens signed with the openssl CLI."""

    def __init__(self, directory):
        self.key = os.path.join(directory, "rsa.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                        self.key], check=True, capture_output=True, timeout=30)
        modulus = subprocess.run(["openssl", "rsa", "-in", self.key, "-noout", "-modulus"], check=True,
                                 capture_output=True, text=True, timeout=30).stdout.strip().split("=", 1)[1]
        self.jwks = os.path.join(directory, "jwks.json")
        with open(self.jwks, "w") as f:
            json.dump({"keys": [{"kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
                                 "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}]}, f)

    def token(self, **claims):
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "agent-1", "tenant": "acme", "iat": now, "nbf": now,
                   "exp": now + 3600}
        payload.update(claims)
        signing_input = (b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": KID}).encode()) + "." +
                         b64url(json.dumps(payload).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True, timeout=30).stdout
        return f"{signing_input}.{b64url(sig)}"


class SlotGatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="obsgw-slot-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.keys = SlotKeys(cls.dir)
        cls.upstream = EchoUpstream()
        cls.addClassCleanup(cls.upstream.stop)
        cls.token = cls.keys.token()

    def slot_env(self, port):
        return {"GATEWAY_LISTEN": f"{LOCALHOST}:{port}", "GATEWAY_PORT": str(port),
                "GATEWAY_BACKEND": self.upstream.url, "GATEWAY_JWKS": self.keys.jwks, "GATEWAY_ISSUER": ISSUER,
                "GATEWAY_AUDIENCE": AUDIENCE, "GATEWAY_TENANT": "acme", "GATEWAY_WORKERS": "1",
                "GATEWAY_RUN_DIR": self.dir, "OBSGW_GATEWAYD": GATEWAYD,
                "OBSGW_LOG_LEVEL": "info"}  # gatewayd's own variable: Gateway.start waits for the "started" line (info)

    def start(self, variant):
        port = free_port()
        gw = Gateway.start(None, command=[SLOT, variant], env=self.slot_env(port))
        self.addCleanup(gw.stop)
        self.assertEqual(gw.port, port)
        self.upstream.reset()
        return gw

    def bearer(self, token=None):
        return {"Authorization": f"Bearer {token or self.token}"}

    def test_plain_proxies_without_a_token(self):
        gw = self.start("plain")
        r = request(gw.port, "GET", "/api/v1/query?query=up")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.upstream.snapshot()[-1].target, "/api/v1/query?query=up")
        self.assertEqual(gw.access_log(), [])

    def test_jwt_verifies_the_token_and_takes_the_tenant_from_its_claim(self):
        gw = self.start("jwt")
        self.assertEqual(request(gw.port, "GET", "/api/v1/query").status, 401)
        forged = self.token[:-8] + ("AAAAAAAA" if not self.token.endswith("AAAAAAAA") else "BBBBBBBB")
        self.assertEqual(request(gw.port, "GET", "/api/v1/query", headers=self.bearer(forged)).status, 401)
        other_audience = self.keys.token(aud="someone-else")
        self.assertEqual(request(gw.port, "GET", "/api/v1/query", headers=self.bearer(other_audience)).status, 401)
        self.assertEqual(self.upstream.hits, 0)
        r = request(gw.port, "GET", "/api/v1/query", headers=self.bearer())
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.upstream.snapshot()[-1].header("X-Scope-OrgID"), "acme")

    def test_full_limits_signs_and_logs(self):
        gw = self.start("full")
        self.assertEqual(request(gw.port, "GET", "/api/v1/query").status, 401)
        body = b'{"streams":[' + b"x" * 10240 + b"]}"
        r = request(gw.port, "POST", "/api/v1/push", headers={**self.bearer(), "Content-Type": "application/json"},
                    body=body)
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNotNone(r.header("RateLimit-Limit"), r.headers)
        seen = self.upstream.snapshot()[-1]
        for name in SIGNATURE_HEADERS:
            self.assertIsNotNone(seen.header(name), name)
        self.assertEqual(seen.header("X-Gateway-Content-SHA256"), hashlib.sha256(body).hexdigest())
        self.assertEqual(seen.header("X-Scope-OrgID"), "acme")
        line = gw.wait_access(lambda l: l.get("path") == "/api/v1/push")
        self.assertEqual(line["tenant"], "acme")
        self.assertEqual(line["bytes_in"], len(body))

    def test_the_harness_pid_is_gatewayd_and_sigterm_stops_it(self):
        gw = self.start("plain")
        with open(f"/proc/{gw.pid}/comm") as f:
            self.assertEqual(f.read().strip(), "gatewayd")  # exec'd: the harness stops what it started
        gw.signal(signal.SIGTERM)
        self.assertEqual(gw.proc.wait(10), 0)

    def test_an_unknown_variant_is_refused(self):
        env = dict(os.environ, **self.slot_env(free_port()))
        p = subprocess.run([SLOT, "fastest"], env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn('unknown variant "fastest"', p.stderr)
        self.assertIn("plain, jwt or full", p.stderr)


if __name__ == "__main__":
    unittest.main()
