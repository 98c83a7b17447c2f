"""Config reloads under load lose no request: every request on a keep-alive connection gets a complete answer
while SIGHUP swaps the route between two upstreams (and one reload is invalid)."""

import threading
import time
import unittest

from harness import Gateway, HttpConnection, make_config, route, upstream_entry
from upstream import EchoUpstream

CLIENTS = 4
DURATION_S = 2.5
MAX_REQUESTS_PER_CLIENT = 5000


class ReloadUnderLoadTest(unittest.TestCase):
    def setUp(self):
        self.a = EchoUpstream()
        self.addCleanup(self.a.stop)
        self.b = EchoUpstream()
        self.addCleanup(self.b.stop)

    def config_for(self, upstream_name):
        upstreams = {"a": upstream_entry(self.a.url), "b": upstream_entry(self.b.url)}
        return make_config(upstreams, [route("load", upstream_name, path_prefix="/")], logging={"access_log": False})

    def test_reloads_during_load_lose_nothing(self):
        gw = Gateway.start(self.config_for("a"))
        self.addCleanup(gw.stop)
        stop = threading.Event()
        results = [dict(ok=0, failures=[]) for _ in range(CLIENTS)]

        def client(slot):
            conn = None
            sent = 0
            while not stop.is_set() and sent < MAX_REQUESTS_PER_CLIENT:
                try:
                    if conn is None:
                        conn = HttpConnection(gw.port, timeout=5)
                    conn.request("GET", f"/r/{slot}/{sent}")
                    sent += 1
                    r = conn.read_response()
                    if r.status == 200:
                        results[slot]["ok"] += 1
                    else:
                        results[slot]["failures"].append(f"status {r.status}")
                    if r.header("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except Exception as e:  # any error on a sent request is a lost request
                    results[slot]["failures"].append(repr(e))
                    if conn:
                        conn.close()
                    conn = None
            if conn:
                conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        outcomes = []
        deadline = time.monotonic() + DURATION_S
        turn = 0
        while time.monotonic() < deadline:
            time.sleep(0.3)
            turn += 1
            if turn == 3:
                outcomes.append(gw.reload(text='{"routes": [}')["msg"])  # invalid: must be rejected
            else:
                outcomes.append(gw.reload(self.config_for("b" if turn % 2 else "a"))["msg"])
        stop.set()
        for t in threads:
            t.join(10)

        failures = [f for r in results for f in r["failures"]]
        ok = sum(r["ok"] for r in results)
        self.assertEqual(failures, [], f"{len(failures)} requests failed during reloads")
        self.assertGreater(ok, 100, "the load was too small to mean anything")
        self.assertIn("reload rejected; keeping the running configuration", outcomes)
        self.assertGreaterEqual(outcomes.count("configuration reloaded"), 3)
        # Both upstreams served traffic: the reloads took effect while requests kept flowing.
        self.assertGreater(self.a.hits, 0)
        self.assertGreater(self.b.hits, 0)
        stats = gw.stats()
        self.assertEqual(stats["config_reloads"]["failure"], 1)


if __name__ == "__main__":
    unittest.main()
