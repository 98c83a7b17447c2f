"""The example programs work: a gateway built in code, and a custom policy loaded from the config file."""

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

from harness import LOCALHOST, request, wait_until
from upstream import EchoUpstream

BUILD_DIR = os.environ.get("OBSGW_BUILD_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "build")


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


if __name__ == "__main__":
    unittest.main()
