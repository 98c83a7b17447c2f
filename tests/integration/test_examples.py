"""The examples work: a gateway built in code, a custom policy loaded from the config file, and the forward-auth
configurations (examples/forward-auth: gatewayd.json and nginx.conf run for real, envoy.yaml and traefik.yml
checked against them)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import GATEWAYD, LOCALHOST, REPO, Gateway, request, wait_until
from nginx_server import Nginx, nginx_check
from upstream import EchoUpstream

BUILD_DIR = os.environ.get("OBSGW_BUILD_DIR") or os.path.join(REPO, "build")
FORWARD_AUTH_DIR = os.path.join(REPO, "examples", "forward-auth")


class ExampleProcess:
    """Runs an example binary and waits for its "serving on HOST:PORT" line."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.port = None
        self.output = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.port is None:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            m = re.search(r"serving on [\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            self.stop()
            raise AssertionError(f"{args[0]} did not start: {''.join(self.output)}")
        threading.Thread(target=lambda: [self.output.append(l) for l in self.proc.stdout], daemon=True).start()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


class ExamplesTest(unittest.TestCase):
    def setUp(self):
        self.upstream = EchoUpstream()
        self.addCleanup(self.upstream.stop)

    def test_embedded_gateway_builds_a_pipeline_in_code(self):
        exe = os.path.join(BUILD_DIR, "examples", "embedded_gateway")
        self.assertTrue(os.path.exists(exe), f"{exe} was not built")
        ex = ExampleProcess([exe, f"{LOCALHOST}:0", self.upstream.url])
        self.addCleanup(ex.stop)
        r = request(ex.port, "GET", "/anything", headers={"X-Internal-Debug": "secret"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Gateway"), "embedded")
        seen = r.json()
        self.assertNotIn("x-internal-debug", {k.lower() for k, _ in seen["headers"]})
        self.assertEqual(request(ex.port, "GET", "/api/v1/push").status, 405)  # the push route is POST only
        self.assertEqual(ex.stop(), 0)  # SIGTERM drains and exits cleanly

    def test_custom_policy_from_config(self):
        exe = os.path.join(BUILD_DIR, "examples", "custom_policy")
        self.assertTrue(os.path.exists(exe), f"{exe} was not built")
        config = {
            "server": {"listen": [f"{LOCALHOST}:0"], "threads": 2},
            "logging": {"level": "warn", "access_log": False},
            "upstreams": {"echo": {"url": self.upstream.url}},
            "routes": [{"name": "guarded", "match": {"path_prefix": "/"}, "upstream": "echo",
                        "policies": [{"type": "concurrency_limit", "max_in_flight": 1}]}],
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(config, f)
        self.addCleanup(os.unlink, f.name)
        ex = ExampleProcess([exe, f.name])
        self.addCleanup(ex.stop)

        slow = {}
        t = threading.Thread(target=lambda: slow.setdefault("r", request(ex.port, "GET", "/slow?delay_ms=800")))
        t.start()
        wait_until(lambda: self.upstream.hits >= 1, timeout=5, message="the slow request reached the upstream")
        busy = request(ex.port, "GET", "/second")
        t.join(10)
        self.assertEqual(busy.status, 503)
        self.assertEqual(busy.json()["error"], "too_busy")
        self.assertEqual(busy.header("Retry-After"), "1")
        self.assertEqual(slow["r"].status, 200)
        # The slot was given back in on_complete: the next request passes.
        self.assertEqual(request(ex.port, "GET", "/third").status, 200)

    def test_custom_policy_config_errors_name_the_key(self):
        exe = os.path.join(BUILD_DIR, "examples", "custom_policy")
        config = {"server": {"listen": [f"{LOCALHOST}:0"]}, "upstreams": {"echo": {"url": self.upstream.url}},
                  "routes": [{"name": "r", "upstream": "echo",
                              "policies": [{"type": "concurrency_limit", "max_in_flight": 0}]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(config, f)
        self.addCleanup(os.unlink, f.name)
        out = subprocess.run([exe, f.name], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        self.assertIn("routes[0].policies[0].max_in_flight: must be between 1 and 1000000, got 0", out.stderr)


def read_example(name):
    with open(os.path.join(FORWARD_AUTH_DIR, name)) as f:
        return f.read()


def replace_once(text, old, new):
    """text with `old` replaced, asserting it occurs exactly once (so a changed example fails loudly here)."""
    if text.count(old) != 1:
        raise AssertionError(f"expected {old!r} exactly once in the example, found it {text.count(old)} times")
    return text.replace(old, new)


class ForwardAuthExampleTest(unittest.TestCase):
    """examples/forward-auth as shipped: gatewayd.json validates from the repository root (its key path is
    relative to it), nginx.conf passes `nginx -t`, and both together (ports and key swapped, nothing else) let a
    token minted by mint_token.py through to a backend and keep the rest out."""

    GATEWAY_ADDR = "127.0.0.1:4181"
    BACKEND_ADDR = "127.0.0.1:9000"
    NGINX_LISTEN = "listen 127.0.0.1:8080;"

    def gateway_config(self):
        return json.loads(read_example("gatewayd.json"))

    def test_gatewayd_config_is_valid(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("OBSGW_")}
        p = subprocess.run([GATEWAYD, "--check", "-c", "examples/forward-auth/gatewayd.json"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("is valid", p.stdout)
        self.assertEqual(self.gateway_config()["server"]["listen"], [self.GATEWAY_ADDR])

    def test_nginx_config_is_valid(self):
        code, out = nginx_check(f"    include {os.path.join(FORWARD_AUTH_DIR, 'nginx.conf')};")
        self.assertEqual(code, 0, out)

    def test_gatewayd_and_nginx_examples_end_to_end(self):
        tmp = tempfile.mkdtemp(prefix="obsgw-fa-example-")
        self.addCleanup(shutil.rmtree, tmp, True)
        key = os.path.join(tmp, "demo-issuer.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
                       check=True, capture_output=True, timeout=30)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", os.path.join(tmp, "demo-issuer.pem")],
                       check=True, capture_output=True, timeout=30)
        config = self.gateway_config()
        provider = config["routes"][0]["policies"][0]["providers"][0]
        self.assertEqual(provider["public_key_files"], ["examples/forward-auth/demo-issuer.pem"])
        provider["public_key_files"] = [os.path.join(tmp, "demo-issuer.pem")]
        gw = Gateway.start(config, args=["--listen", f"{LOCALHOST}:0", "--admin-listen", f"{LOCALHOST}:0"])
        self.addCleanup(gw.stop)
        up = EchoUpstream()
        self.addCleanup(up.stop)

        text = read_example("nginx.conf")
        text = replace_once(text, f"server {self.GATEWAY_ADDR};", f"server {LOCALHOST}:{gw.port};")
        text = replace_once(text, f"server {self.BACKEND_ADDR};", f"server {LOCALHOST}:{up.port};")
        conf = os.path.join(tmp, "forward-auth.conf")

        def http_body(port):
            with open(conf, "w") as f:
                f.write(replace_once(text, self.NGINX_LISTEN, f"listen {LOCALHOST}:{port};"))
            return f"    include {conf};"
        ng = Nginx(http_body)
        self.addCleanup(ng.stop)

        def mint(*args):
            p = subprocess.run([sys.executable, os.path.join(FORWARD_AUTH_DIR, "mint_token.py"), "--key", key, *args],
                               check=True, capture_output=True, text=True, timeout=30)
            return {"Authorization": "Bearer " + p.stdout.strip()}

        writer = mint("--sub", "alice", "--tenant", "tenant-a", "--scope", "logs:write logs:read",
                      "--email", "alice@example.com", "--groups", "dev,ops")
        r = request(ng.port, "POST", "/loki/api/v1/push", dict(writer, **{"X-Scope-OrgID": "evil"}), b"line\n")
        self.assertEqual(r.status, 200, (r, ng.log_text()))
        rec = up.snapshot()[0]
        self.assertEqual((rec.method, rec.target, rec.body_len), ("POST", "/loki/api/v1/push", 5))
        self.assertEqual(rec.header_all("X-Scope-OrgID"), ["tenant-a"])
        self.assertEqual(rec.header_all("X-Auth-Request-User"), ["alice"])
        self.assertEqual(rec.header_all("X-Auth-Request-Email"), ["alice@example.com"])
        self.assertEqual(rec.header_all("X-Auth-Request-Groups"), ["dev,ops"])
        self.assertIsNone(rec.header("Authorization"))
        gw.wait_access(lambda l: l.get("request_id") == rec.header("X-Request-Id") and l["status"] == 200)

        r = request(ng.port, "GET", "/loki/api/v1/push", {"X-Auth-Request-User": "admin"})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.header_all("WWW-Authenticate"), ['Bearer realm="obsgw"'])
        self.assertEqual(r.json()["request_id"], r.header("X-Request-Id"))

        r = request(ng.port, "GET", "/loki/api/v1/push", mint("--scope", "logs:read"))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.header_all("WWW-Authenticate"), ['Bearer error="insufficient_scope", scope="logs:write"'])
        self.assertEqual(up.hits, 1)

    def test_envoy_and_traefik_examples_match_gatewayd_json(self):
        """Envoy and Traefik cannot run here (not in Debian); their files are parsed (PyYAML, Debian's python3-yaml,
        which scripts/install-deps.sh installs: without it this test fails rather than pass unchecked) and checked
        against gatewayd.json: address, path, and the identity headers copied upstream."""
        import yaml
        config = self.gateway_config()
        route = config["routes"][0]
        headers = route["forward_auth"]["response_headers"]
        host, port = config["server"]["listen"][0].rsplit(":", 1)

        envoy = yaml.safe_load(read_example("envoy.yaml"))
        hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        filters = [f["name"] for f in hcm["http_filters"]]
        self.assertEqual(filters, ["envoy.filters.http.header_mutation", "envoy.filters.http.ext_authz",
                                   "envoy.filters.http.router"])
        removed = [m["remove"] for m in hcm["http_filters"][0]["typed_config"]["mutations"]["request_mutations"]]
        self.assertEqual(removed, [h.lower() for h in headers])
        authz = hcm["http_filters"][1]["typed_config"]
        service = authz["http_service"]
        self.assertEqual(service["path_prefix"], route["match"]["path_prefix"])
        self.assertFalse(authz["failure_mode_allow"])
        patterns = service["authorization_response"]["allowed_upstream_headers"]["patterns"]
        for h in headers:
            self.assertTrue(any(p.get("exact") == h.lower() or ("prefix" in p and h.lower().startswith(p["prefix"]))
                                for p in patterns), h)
        clusters = envoy["static_resources"]["clusters"]
        cluster = next(c for c in clusters if c["name"] == service["server_uri"]["cluster"])
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        self.assertEqual((address["address"], str(address["port_value"])), (host, port))

        traefik = yaml.safe_load(read_example("traefik.yml"))
        fa = traefik["http"]["middlewares"]["obsgw-forward-auth"]["forwardAuth"]
        self.assertEqual(fa["address"], f"http://{host}:{port}{route['match']['path_prefix']}")
        self.assertEqual(fa["authResponseHeaders"], headers)
        self.assertFalse(fa["trustForwardHeader"])
        self.assertIn("obsgw-forward-auth", traefik["http"]["routers"]["backend"]["middlewares"])


if __name__ == "__main__":
    unittest.main()


def check_example(relative_path, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSGW_")}
    env.update(extra_env or {})
    return subprocess.run([GATEWAYD, "--check", "-c", relative_path], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=30)


class DeploymentExamplesTest(unittest.TestCase):
    """Each deployment example validates as shipped (secrets from the environment, as their READMEs say)."""

    def test_configs_are_valid(self):
        secrets = {"EDGE_SIGNING_SECRET": "e" * 64, "REDIS_PASSWORD": "not-used-by-check",
                   "OBSGW_GOOGLE_CLIENT_SECRET": "g", "OBSGW_GITHUB_CLIENT_SECRET": "h", "OBSGW_SSO_COOKIE_SECRET": "c" * 44}
        for name in ("edge-gateway", "platform-api-gateway", "hub-and-spoke", "observability-platform", "grafana-sso"):
            with self.subTest(example=name):
                p = check_example(f"examples/{name}/gatewayd.json", secrets)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("is valid", p.stdout)

    def test_grafana_sso_needs_its_cookie_secret(self):
        p = check_example("examples/grafana-sso/gatewayd.json",
                          {"OBSGW_GOOGLE_CLIENT_SECRET": "g", "OBSGW_GITHUB_CLIENT_SECRET": "h", "OBSGW_SSO_COOKIE_SECRET": "short"})
        self.assertEqual(p.returncode, 2)
        self.assertIn("routes[0].policies[0].cookie_secret_envs: the secret in OBSGW_SSO_COOKIE_SECRET has 5 bytes", p.stderr)

    def test_edge_gateway_needs_its_signing_secret(self):
        p = check_example("examples/edge-gateway/gatewayd.json")
        self.assertEqual(p.returncode, 2)
        self.assertIn('secret_env: environment variable "EDGE_SIGNING_SECRET" is not set', p.stderr)


class EdgeGatewayExampleTest(unittest.TestCase):
    """examples/edge-gateway/gatewayd.json run as it is, with only the addresses moved to loopback: the allow list,
    the per-IP burst, trusted proxies, the region, signed forwarding (checked with the README's Python verifier)
    and the edge fields of /stats."""

    SECRET = "s" * 48

    def setUp(self):
        from test_signing import CaptureUpstream, readme_verifier
        self.verify = readme_verifier()["verify_obsgw_signature"]
        self.ups = [CaptureUpstream(), CaptureUpstream()]
        for u in self.ups:
            self.addCleanup(u.stop)
        with open(os.path.join(REPO, "examples", "edge-gateway", "gatewayd.json")) as f:
            config = json.load(f)
        config["server"]["listen"] = [f"{LOCALHOST}:0"]
        config["server"]["admin_listen"] = f"{LOCALHOST}:0"
        central = config["upstreams"]["central"]
        central["endpoints"] = [f"{LOCALHOST}:{u.port}" for u in self.ups]
        self.gw = Gateway.start(config, env={"EDGE_SIGNING_SECRET": self.SECRET})
        self.addCleanup(self.gw.stop)

    def test_edge_gateway(self):
        # The per-IP limit lets a burst of 20 through, then 429 with its headers.
        statuses = [request(self.gw.port, "GET", f"/v1/items/{i}").status for i in range(24)]
        self.assertEqual(statuses[:20], [200] * 20)
        self.assertEqual(statuses[20:], [429] * 4)
        served = [[r for r in u.requests if r[1] != "/healthz"] for u in self.ups]  # the health checks hit them too
        self.assertEqual(sum(len(s) for s in served), 20)
        self.assertTrue(all(served))  # both endpoints served

        method, target, headers, body = next(s for s in served if s)[-1]
        self.assertEqual(headers["X-Gateway-Region"], "eu-west-1")
        self.assertEqual(headers["X-Edge-Client-IP"], "127.0.0.1")
        self.assertEqual(headers["X-Gateway-Key-Id"], "edge-eu-west-1")
        self.assertTrue(self.verify(method, target, headers, body, {"edge-eu-west-1": self.SECRET.encode()}))
        self.assertFalse(self.verify(method, target, headers, body, {"edge-eu-west-1": b"x" * 48}))

        stats = json.loads(request(self.gw.admin_port, "GET", "/stats").body)
        self.assertEqual(stats["region"], "eu-west-1")
        self.assertEqual(stats["rate_limited"], 4)
        self.assertEqual(stats["forwarded"], 20)
        self.assertGreaterEqual(stats["active_clients"], 1)
        # 127.0.0.1 is not a trusted proxy here: a claimed X-Forwarded-For changes nothing (still limited).
        r = request(self.gw.port, "GET", "/v1/x", {"X-Forwarded-For": "198.51.100.7"})
        self.assertEqual(r.status, 429)
