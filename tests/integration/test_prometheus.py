"""A real Prometheus server (Debian's `prometheus`) scrapes gatewayd's /metrics and can query what it counted."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import LOCALHOST, Gateway, free_port, make_config, request, route, upstream_entry, wait_until
from upstream import EchoUpstream

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class PrometheusScrapeTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(PROMETHEUS):
            self.fail("prometheus is not installed (scripts/install-deps.sh test installs it)")
        self.upstream = EchoUpstream()
        self.addCleanup(self.upstream.stop)
        config = make_config({"echo": upstream_entry(self.upstream.url)}, [route("metrics-route", "echo", path_prefix="/")])
        self.gw = Gateway.start(config)
        self.addCleanup(self.gw.stop)

    def start_prometheus(self):
        workdir = tempfile.mkdtemp(prefix="obsgw-prom-")
        self.addCleanup(shutil.rmtree, workdir, True)
        with open(os.path.join(workdir, "prometheus.yml"), "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: obsgw\n    static_configs:\n"
                f"      - targets: ['{LOCALHOST}:{self.gw.admin_port}']\n"
            )
        port = free_port()
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={workdir}/prometheus.yml", f"--storage.tsdb.path={workdir}/data",
             f"--web.listen-address={LOCALHOST}:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

        self.addCleanup(stop)
        return port

    @staticmethod
    def query(port, expr):
        url = f"http://{LOCALHOST}:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                data = json.load(r)
        except OSError:
            return None
        result = data.get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    def test_prometheus_scrapes_request_counts(self):
        for i in range(7):
            self.assertEqual(request(self.gw.port, "GET", f"/item/{i}").status, 200)
        self.assertEqual(request(self.gw.port, "GET", "/x", headers={"Content-Length": "1", "Transfer-Encoding": "chunked"}).status, 400)

        port = self.start_prometheus()
        # The target is up and its samples are queryable (Prometheus needs a scrape or two after start).
        wait_until(lambda: self.query(port, 'up{job="obsgw"}') == 1.0, timeout=30, message="Prometheus scraped gatewayd")
        wait_until(lambda: self.query(port, 'obsgw_requests_total{route="metrics-route",code="200"}') == 7.0,
                   timeout=15, message="7 requests of the route counted in Prometheus")
        self.assertEqual(self.query(port, 'obsgw_rejections_total{reason="ambiguous_framing"}'), 1.0)
        self.assertEqual(self.query(port, 'obsgw_request_duration_seconds_count{route="metrics-route"}'), 7.0)
        # A parse of the histogram worked: buckets are cumulative and end at the count.
        self.assertEqual(self.query(port, 'obsgw_request_duration_seconds_bucket{route="metrics-route",le="+Inf"}'), 7.0)
        self.assertIsNotNone(self.query(port, "obsgw_active_connections"))


if __name__ == "__main__":
    unittest.main()
