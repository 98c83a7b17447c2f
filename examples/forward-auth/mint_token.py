#!/usr/bin/env python3
"""Prints an RS256 JWT for trying the forward-auth example, signed with `openssl dgst -sha256 -sign`.

    python3 examples/forward-auth/mint_token.py --key /tmp/obsgw-fa/demo-issuer.key \\
        --sub alice --tenant tenant-a --scope "logs:write logs:read" --email alice@example.com

The kid is the key file's name without extension ("demo-issuer"), which is how gatewayd names a key given in
"public_key_files". Issuer and audience default to those of examples/forward-auth/gatewayd.json. Python standard
library and the openssl CLI only; for demos and tests, not a token service.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(key, claims, kid):
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                               capture_output=True, check=True).stdout
    return signing_input + "." + b64url(signature)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--key", required=True, help="PEM private key (RSA)")
    ap.add_argument("--kid", help="default: the key file's name without extension")
    ap.add_argument("--issuer", default="https://issuer.example")
    ap.add_argument("--audience", default="urn:obsgw")
    ap.add_argument("--sub", default="alice")
    ap.add_argument("--tenant", default="tenant-a", help="the tenant_id claim; '' leaves it out")
    ap.add_argument("--scope", default="logs:write", help="space-separated scopes; '' leaves the claim out")
    ap.add_argument("--email", default="")
    ap.add_argument("--groups", default="", help="comma-separated")
    ap.add_argument("--ttl", type=int, default=600, help="seconds until exp")
    a = ap.parse_args(argv)

    now = int(time.time())
    claims = {"iss": a.issuer, "aud": a.audience, "sub": a.sub, "iat": now, "exp": now + a.ttl}
    if a.tenant:
        claims["tenant_id"] = a.tenant
    if a.scope:
        claims["scope"] = a.scope
    if a.email:
        claims["email"] = a.email
    if a.groups:
        claims["groups"] = [g for g in a.groups.split(",") if g]
    kid = a.kid or os.path.splitext(os.path.basename(a.key))[0]
    print(mint(a.key, claims, kid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
