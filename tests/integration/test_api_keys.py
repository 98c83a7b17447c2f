"""Static API keys through a real gatewayd: only SHA-256 hashes in the config, each key bound to an identity and
its tenants; the tenant policy takes the key's tenants; wrong keys get 401; the key is never forwarded or logged."""

import hashlib
import json
import unittest

from harness import Gateway, make_config, request, route, upstream_entry
from upstream import EchoUpstream

EU_KEY = "k-eu-4f9c2d7e8b1a6350c9e2f4a7b8d1c3e5"
US_KEY = "k-us-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def seen_header(response, name):
    """The value(s) of `name` among the headers the echo upstream received (None, one value, or a list)."""
    values = [v for n, v in response.json()["headers"] if n.lower() == name.lower()]
    return None if not values else values[0] if len(values) == 1 else values


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


class ApiKeyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.upstream = EchoUpstream()
        keys = {"type": "api_key", "keys": [
            {"id": "edge-eu", "sha256": sha256(EU_KEY), "tenants": ["acme"], "scopes": ["logs:write"]},
            {"id": "edge-us", "sha256": sha256(US_KEY).upper(), "subject": "svc-us", "tenants": ["globex", "initech"]},
        ]}
        config = make_config(
            {"backend": upstream_entry(cls.upstream.url)},
            [route("push", "backend", path="/push", policies=[keys, {"type": "authorize", "scopes": ["logs:write"]},
                                                              {"type": "tenant"}]),
             route("query", "backend", path_prefix="/query", policies=[
                 dict(keys, token_sources=["bearer", "header:X-API-Key"]),
                 {"type": "tenant", "from_header": True, "federation": True}]),
             # authenticated, but no tenant policy: nothing vouches for a client-sent tenant
             route("untenanted", "backend", path="/untenanted", policies=[keys]),
             route("trusting", "backend", path="/trusting", trust_client_tenant_header=True, policies=[keys]),
             route("open", "backend", path="/open")])
        cls.gw = Gateway.start(config)

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        cls.upstream.stop()

    def test_a_key_pushes_under_its_tenant(self):
        r = request(self.gw.port, "POST", "/push", {"X-API-Key": EU_KEY, "X-Scope-OrgID": "globex",
                                                    "X-Auth-Request-User": "admin"}, body=b"line")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Scope-OrgID"), "acme")
        self.assertEqual(seen_header(r, "X-Auth-Request-User"), "edge-eu")
        self.assertIsNone(seen_header(r, "X-API-Key"))

    def test_client_tenant_header_is_dropped_where_no_tenant_policy_vouches_for_it(self):
        """A route that authenticates without a tenant policy drops a client's X-Scope-OrgID (a multi-tenant
        backend would take it as the tenant); trust_client_tenant_header keeps it; a route without
        authentication is a plain proxy and passes it on."""
        spoof = {"X-API-Key": EU_KEY, "X-Scope-OrgID": "globex"}
        r = request(self.gw.port, "GET", "/untenanted", spoof)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(seen_header(r, "X-Scope-OrgID"))
        self.assertEqual(seen_header(r, "X-Auth-Request-User"), "edge-eu")
        r = request(self.gw.port, "GET", "/untenanted", [("X-API-Key", EU_KEY), ("x-scope-orgid", "a"),
                                                         ("X-SCOPE-ORGID", "b")])
        self.assertIsNone(seen_header(r, "X-Scope-OrgID"))
        self.assertEqual(seen_header(request(self.gw.port, "GET", "/trusting", spoof), "X-Scope-OrgID"), "globex")
        self.assertEqual(seen_header(request(self.gw.port, "GET", "/open", {"X-Scope-OrgID": "globex"}),
                                     "X-Scope-OrgID"), "globex")
        # Said at start, once per such route, so that nobody learns it from the backend's "no org id" errors.
        with self.gw._cond:
            said = [l.get("route") for l in self.gw.lines
                    if l.get("msg") == "route drops client X-Scope-OrgID (authenticated, no tenant policy)"]
        self.assertEqual(said, ["untenanted"])

    def test_refusals(self):
        before = self.upstream.hits
        r = request(self.gw.port, "POST", "/push", {"X-API-Key": EU_KEY[:-1] + "0"}, body=b"x")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"], "unknown_api_key")
        self.assertIn('error="invalid_token"', r.header("WWW-Authenticate"))
        r = request(self.gw.port, "POST", "/push", {}, body=b"x")
        self.assertEqual((r.status, r.json()["error"]), (401, "missing_api_key"))
        # A valid key without the route's scope.
        r = request(self.gw.port, "POST", "/push", {"X-API-Key": US_KEY}, body=b"x")
        self.assertEqual((r.status, r.json()["error"]), (403, "insufficient_scope"))
        self.assertEqual(self.upstream.hits, before)

    def test_query_with_a_bearer_key_and_a_chosen_tenant(self):
        r = request(self.gw.port, "GET", "/query/x", {"Authorization": "Bearer " + US_KEY, "X-Scope-OrgID": "initech"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(seen_header(r, "X-Scope-OrgID"), "initech")
        self.assertEqual(seen_header(r, "X-Auth-Request-User"), "svc-us")
        self.assertIsNone(seen_header(r, "Authorization"))
        r = request(self.gw.port, "GET", "/query/x", {"X-API-Key": US_KEY, "X-Scope-OrgID": "globex|initech"})
        self.assertEqual(seen_header(r, "X-Scope-OrgID"), "globex|initech")
        r = request(self.gw.port, "GET", "/query/x", {"X-API-Key": US_KEY, "X-Scope-OrgID": "acme"})
        self.assertEqual((r.status, r.json()["error"]), (403, "tenant_not_allowed"))
        r = request(self.gw.port, "GET", "/query/x", {"X-API-Key": US_KEY})
        self.assertEqual(seen_header(r, "X-Scope-OrgID"), "globex|initech")

    def test_keys_never_appear_in_the_output(self):
        request(self.gw.port, "POST", "/push", {"X-API-Key": EU_KEY}, body=b"x")
        self.gw.wait_access(lambda l: l.get("route") == "push")
        output = json.dumps(self.gw.access_log()) + self.gw.stderr_text()
        for key in (EU_KEY, US_KEY):
            self.assertNotIn(key, output)


if __name__ == "__main__":
    unittest.main()
