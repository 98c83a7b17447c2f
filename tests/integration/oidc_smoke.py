"""Smoke test of the OpenID Provider fixture (oidc_provider.py) on its own, without gatewayd.
Not named test_*.py, so ctest does not run it; run it with `python3 oidc_smoke.py` in this folder."""

import base64
import hashlib
import json
import os
import tempfile
import time
import unittest

from oidc_provider import AUDIENCE, OPAQUE_RESOURCE, SCOPES, OidcProvider, decode_jwt

# DER prefix of a SHA-256 DigestInfo (RFC 8017 section 9.2, note 1).
_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64int(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")


def rs256_valid(token, jwk):
    """RSASSA-PKCS1-v1_5 with SHA-256, checked with pow(); enough to tie a token to a JWKS key."""
    signing_input, _, sig = token.rpartition(".")
    n, e = b64int(jwk["n"]), b64int(jwk["e"])
    size = (n.bit_length() + 7) // 8
    t = _SHA256_INFO + hashlib.sha256(signing_input.encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(t) - 3) + b"\x00" + t
    return pow(b64int(sig), e, n).to_bytes(size, "big") == expected


class TlsProviderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.op = OidcProvider(tls=True)

    @classmethod
    def tearDownClass(cls):
        cls.op.stop()

    def test_discovery_says_https(self):
        d = self.op.discovery()
        self.assertTrue(self.op.issuer.startswith("https://127.0.0.1:"))
        self.assertEqual(d["issuer"], self.op.issuer)
        self.assertEqual(d["jwks_uri"], f"https://127.0.0.1:{self.op.port}/jwks")
        self.assertEqual(d["token_endpoint"], f"https://127.0.0.1:{self.op.port}/token")
        self.assertIn("client_credentials", d["grant_types_supported"])

    def test_jwks_is_public_rsa(self):
        [key] = self.op.jwks()["keys"]
        self.assertEqual((key["kid"], key["kty"], key["alg"], key["use"]), ("rsa-1", "RSA", "RS256", "sig"))
        self.assertNotIn("d", key)

    def test_agent_a_token(self):
        token = self.op.token("agent-a", "agent-a-secret", scope="logs:write metrics:write")
        header, claims = decode_jwt(token)
        self.assertEqual(header, {"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"})
        self.assertEqual(claims["iss"], self.op.issuer)
        self.assertEqual(claims["aud"], AUDIENCE)
        self.assertEqual((claims["sub"], claims["client_id"]), ("agent-a", "agent-a"))
        self.assertEqual(claims["tenant_id"], "tenant-a")
        self.assertEqual(claims["scope"], "logs:write metrics:write")
        self.assertNotIn("groups", claims)
        self.assertEqual(claims["exp"] - claims["iat"], 3600)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 5)
        self.assertTrue(rs256_valid(token, self.op.jwks()["keys"][0]))

    def test_agent_multi_token(self):
        header, claims = decode_jwt(self.op.token("agent-multi", "agent-multi-secret"))
        self.assertEqual(header["typ"], "at+jwt")
        self.assertEqual((claims["iss"], claims["aud"]), (self.op.issuer, AUDIENCE))
        self.assertEqual(claims["groups"], ["obs-tenant-acme", "obs-tenant-globex", "staff"])
        self.assertNotIn("tenant_id", claims)
        self.assertEqual(claims["scope"], SCOPES)

    def test_agent_b_and_refusals(self):
        self.assertEqual(decode_jwt(self.op.token("agent-b"))[1]["tenant_id"], "tenant-b")
        status, body = self.op.token_response("agent-a", "wrong-secret")
        self.assertEqual((status, body["error"]), (401, "invalid_client"))
        status, body = self.op.token_response("agent-a", resource="urn:other")
        self.assertEqual((status, body["error"]), (400, "invalid_target"))
        # an unknown scope is dropped silently, not refused
        self.assertNotIn("scope", decode_jwt(self.op.token("agent-a", scope="admin"))[1])

    def test_opaque_token_introspection_and_revocation(self):
        d = self.op.discovery()
        self.assertEqual(d["introspection_endpoint"], self.op.issuer + "/token/introspection")
        self.assertEqual(d["revocation_endpoint"], self.op.issuer + "/token/revocation")
        token = self.op.token("agent-a", scope="logs:write", resource=OPAQUE_RESOURCE)
        self.assertNotIn(".", token)  # not a JWT
        status, body = self.op.introspect(token)
        self.assertEqual(status, 200)
        fields = ("active", "client_id", "aud", "iss", "scope", "token_type", "tenant_id")
        self.assertEqual({k: body[k] for k in fields},
                         {"active": True, "client_id": "agent-a", "aud": OPAQUE_RESOURCE, "iss": self.op.issuer,
                          "scope": "logs:write", "token_type": "Bearer", "tenant_id": "tenant-a"})
        self.assertNotIn("sub", body)  # oidc-provider names no subject for client_credentials tokens
        self.assertEqual(body["exp"] - body["iat"], 3600)
        self.assertEqual(self.op.introspect(token, "agent-b"), (200, {"active": False}))  # not agent-b's business
        self.assertEqual(self.op.introspect(token, secret="wrong")[0], 401)
        self.assertEqual(self.op.introspect(self.op.token("agent-a"))[1]["error"], "unsupported_token_type")  # a JWT
        self.op.revoke(token, "agent-a")
        self.assertEqual(self.op.introspect(token), (200, {"active": False}))

    def test_user_login_and_userinfo(self):
        tokens = self.op.user_tokens("alice")
        self.assertEqual(decode_jwt(tokens["id_token"])[1]["sub"], "alice")
        access = tokens["access_token"]
        self.assertEqual(self.op.request("GET", "/me", None, {"Authorization": "Bearer " + access}),
                         (200, {"sub": "alice", "tenant_id": "tenant-a"}))
        body = self.op.introspect(access)[1]
        self.assertEqual((body["active"], body["sub"], body["client_id"]), (True, "alice", "gateway-web"))
        self.assertNotIn("aud", body)
        tokens = self.op.user_tokens("bob", scope="openid offline_access", prompt="consent")
        self.assertIn("refresh_token", tokens)
        self.assertEqual(self.op.request("GET", "/me", None, {"Authorization": "Bearer " + tokens["access_token"]})[1],
                         {"sub": "bob", "tenant_id": "tenant-b"})
        for token in (self.op.token("agent-a"), self.op.token("agent-a", resource=OPAQUE_RESOURCE)):
            self.assertEqual(self.op.request("GET", "/me", None, {"Authorization": "Bearer " + token})[0], 401)


class RotationTest(unittest.TestCase):
    def test_rotate_then_drop(self):
        with OidcProvider(tls=True) as op:
            old = op.token("agent-a")
            self.assertEqual(op.rotate(), {"kid": "rsa-2", "kids": ["rsa-2", "rsa-1"]})
            self.assertEqual([k["kid"] for k in op.jwks()["keys"]], ["rsa-2", "rsa-1"])
            new = op.token("agent-a")
            self.assertEqual(decode_jwt(new)[0]["kid"], "rsa-2")
            keys = {k["kid"]: k for k in op.jwks()["keys"]}
            self.assertTrue(rs256_valid(new, keys["rsa-2"]))
            self.assertTrue(rs256_valid(old, keys["rsa-1"]))

            self.assertEqual(op.rotate(drop=True), {"kid": "rsa-3", "kids": ["rsa-3"]})
            self.assertEqual([k["kid"] for k in op.jwks()["keys"]], ["rsa-3"])
            self.assertEqual(decode_jwt(op.token("agent-a"))[0]["kid"], "rsa-3")
            with open(op.keys_file) as f:
                self.assertEqual([k["kid"] for k in json.load(f)], ["rsa-3"])


class Es256ShortTtlTest(unittest.TestCase):
    """Plain HTTP, a P-256 key, 5 s tokens, and a restart that keeps the keys file."""

    def test_es256_restart_keeps_keys(self):
        with tempfile.TemporaryDirectory() as tmp:
            keys_file = os.path.join(tmp, "keys.json")
            with OidcProvider(alg="ES256", token_ttl=5, keys_file=keys_file) as op:
                self.assertTrue(op.issuer.startswith("http://127.0.0.1:"))
                self.assertEqual(op.discovery()["jwks_uri"], op.issuer + "/jwks")
                [key] = op.jwks()["keys"]
                self.assertEqual((key["kid"], key["kty"], key["crv"], key["alg"]), ("ec-1", "EC", "P-256", "ES256"))
                header, claims = decode_jwt(op.token("agent-b"))
                self.assertEqual(header, {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"})
                self.assertEqual((claims["iss"], claims["tenant_id"]), (op.issuer, "tenant-b"))
                self.assertEqual(claims["exp"] - claims["iat"], 5)
                self.assertEqual(decode_jwt(op.user_tokens("carol")["id_token"])[0]["alg"], "ES256")  # over HTTP
                self.assertEqual(op.rotate(alg="RS256")["kids"], ["rsa-2", "ec-1"])
            with OidcProvider(keys_file=keys_file) as op:
                self.assertEqual([k["kid"] for k in op.jwks()["keys"]], ["rsa-2", "ec-1"])
                self.assertEqual(decode_jwt(op.token("agent-a"))[0]["kid"], "rsa-2")


if __name__ == "__main__":
    unittest.main()
