"""Per-tenant quotas counted in a real redis-server, through real gatewayd processes.

- Enforcing: two gatewayd processes share one Redis; a tenant with a daily quota of N requests gets exactly N
  admitted across both (fresh connections, so every io thread decides), then 429 quota_exceeded with Retry-After
  equal to the seconds until the next UTC midnight and the structured body members; another tenant is unaffected;
  the admin listener's GET /quota?tenant= reports the same use from either gateway.
- Bytes: a byte quota counts request bodies, and the request that would go over is refused.
- Alert-only: requests over the quota pass, carry X-Quota-Exceeded, are counted in obsgw_quota_exceeded_total,
  and are logged (once a minute per tenant).
- The counters live under the configured key prefix with a TTL that ends after the period.

Tenants come from API keys bound to them (the `api_key` authenticator and a `tenant` policy), as an edge deployment
without an identity provider would do it. Every quota name is used by one test only."""

import datetime
import hashlib
import time
import unittest

from harness import Gateway, concurrently, make_config, metric_value, request, route, upstream_entry
from redis_server import RedisServer
from test_redis_limits import fast_upstream, wait_connected

PREFIX = "it-quota:"
KEYS = {"acme": "acme-key-0123456789abcdef", "globex": "globex-key-0123456789abcdef"}


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def identity_policies():
    return [
        {"type": "api_key", "keys": [{"id": f"key-{t}", "sha256": sha256(k), "tenants": [t]} for t, k in KEYS.items()]},
        {"type": "tenant"},
    ]


def as_tenant(tenant, extra=None):
    headers = {"X-API-Key": KEYS[tenant]}
    headers.update(extra or {})
    return headers


def seconds_to_utc_midnight():
    now = datetime.datetime.now(datetime.timezone.utc)
    midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds(), midnight


def start_gateways(case, routes, count=1):
    """A redis-server, a fast upstream and `count` gatewayd processes sharing them (class fixtures of `case`)."""
    case.redis = RedisServer.start()
    case.addClassCleanup(case.redis.close)
    case.up = fast_upstream()
    case.addClassCleanup(case.up.stop)
    cfg = make_config({"up": upstream_entry(case.up.url)}, routes, logging={"access_log": False})
    cfg["redis"] = {"address": case.redis.address, "timeout_ms": 1000, "key_prefix": PREFIX}
    gateways = []
    for _ in range(count):
        gw = Gateway.start(cfg)
        case.addClassCleanup(gw.stop)
        gateways.append(gw)
    return gateways


class QuotaFleetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        quota = {"type": "quota", "name": "it-daily", "period": "day", "mode": "enforce", "store": "redis",
                 "on_store_failure": "fail_closed", "requests": 10, "tenants": {"globex": {"requests": 1000}}}
        routes = [
            route("warm", "up", path="/warm", tag=False, policies=[
                {"type": "rate_limit", "store": "redis", "limits": [
                    {"name": "quota-warm", "key": "global", "rate": 100000, "per": "second"}]}]),
            route("push", "up", path="/push", tag=False, policies=identity_policies() + [quota]),
        ]
        cls.gws = start_gateways(cls, routes, count=2)
        wait_connected(cls.gws, [0, 0], "/warm")

    def usage(self, gw, tenant):
        r = gw.admin_get(f"/quota?tenant={tenant}")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["tenant"], tenant)
        (q,) = [q for q in body["quotas"] if q["name"] == "it-daily"]
        return q

    def test_daily_quota_is_exact_across_the_fleet_and_reported(self):
        """acme may make 10 requests a day: 24 requests from 6 threads over both gateways -> exactly 10 pass; the
        others get 429 quota_exceeded with Retry-After = seconds to the next UTC midnight (±2 s) and the body
        members quota/tenant/exceeded/reset/retry_after_s; X-Quota-Remaining-Requests counts 9..0, each value once;
        globex (its own limit of 1000) still passes; GET /quota?tenant=acme on either gateway says limit 10,
        used 10 (refused requests are not counted), remaining 0, reset at the next midnight."""
        if seconds_to_utc_midnight()[0] < 60:
            self.skipTest("within a minute of UTC midnight: the daily period would end during the test")
        results = [r for _, r in concurrently(6, 4, lambda i: request(self.gws[i % 2].port, "GET", "/push",
                                                                       as_tenant("acme")))]
        admitted = [r for r in results if r.status == 200]
        refused = [r for r in results if r.status != 200]
        self.assertEqual(len(admitted), 10, [r.status for r in results])
        self.assertEqual(sorted(int(r.header("X-Quota-Remaining-Requests")) for r in admitted), list(range(10)))
        to_midnight, midnight = seconds_to_utc_midnight()
        for r in refused:
            self.assertEqual(r.status, 429, r)
            body = r.json()
            self.assertEqual(body["error"], "quota_exceeded", body)
            self.assertEqual((body["quota"], body["tenant"], body["exceeded"]), ("it-daily", "acme", "requests"))
            self.assertEqual(body["reset"], midnight.strftime("%Y-%m-%dT%H:%M:%SZ"), body)
            retry = int(r.header("Retry-After"))
            self.assertEqual(body["retry_after_s"], retry, body)
            self.assertLessEqual(abs(retry - to_midnight), 2, (retry, to_midnight))
        self.assertEqual(request(self.gws[0].port, "GET", "/push", as_tenant("globex")).status, 200)
        for gw in self.gws:
            q = self.usage(gw, "acme")
            self.assertEqual((q["period"], q["mode"], q["store"]), ("day", "enforce", "redis"), q)
            self.assertEqual(q["requests"], {"limit": 10, "used": 10, "remaining": 0}, q)
            self.assertLessEqual(abs(q["reset_seconds"] - to_midnight), 2, q)
        g = self.usage(self.gws[1], "globex")
        self.assertEqual(g["requests"]["limit"], 1000, g)
        self.assertGreaterEqual(g["requests"]["used"], 1, g)
        # The counters are Redis keys under the prefix, expiring after the period (not kept forever).
        keys = [k for k in self.redis.call("KEYS", PREFIX + "*") if "it-daily" in k]
        self.assertTrue(keys, self.redis.call("KEYS", "*"))
        for k in keys:
            ttl = int(self.redis.call("TTL", k))
            self.assertGreater(ttl, 0, k)
            self.assertLessEqual(ttl, to_midnight + 2 * 86400, k)


class QuotaBytesAndAlertTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        bytes_quota = {"type": "quota", "name": "it-bytes", "period": "month", "mode": "enforce", "store": "redis",
                       "bytes": 1000}
        alert_quota = {"type": "quota", "name": "it-alert", "period": "day", "mode": "alert", "store": "redis",
                       "requests": 2}
        routes = [
            route("bytes", "up", path="/bytes", tag=False, policies=identity_policies() + [bytes_quota]),
            route("alert", "up", path="/alert", tag=False, policies=identity_policies() + [alert_quota]),
        ]
        (cls.gw,) = start_gateways(cls, routes)

    def test_byte_quota_counts_bodies_and_refuses_the_push_that_would_go_over(self):
        """1000 bytes a month: bodies of 400 and 400 pass (X-Quota-Remaining-Bytes 600, then 200), one of 300 is
        refused with exceeded "bytes", one of 200 still fits (0 left)."""
        def push(n):
            return request(self.gw.port, "POST", "/bytes", as_tenant("acme", {"Content-Type": "text/plain"}),
                           body=b"x" * n)
        r1, r2 = push(400), push(400)
        self.assertEqual([r1.status, r2.status], [200, 200])
        self.assertEqual([r1.header("X-Quota-Remaining-Bytes"), r2.header("X-Quota-Remaining-Bytes")], ["600", "200"])
        r3 = push(300)
        self.assertEqual(r3.status, 429, r3)
        self.assertEqual((r3.json()["error"], r3.json()["exceeded"]), ("quota_exceeded", "bytes"))
        r4 = push(200)
        self.assertEqual(r4.status, 200, r4)
        self.assertEqual(r4.header("X-Quota-Remaining-Bytes"), "0")
        q = [q for q in self.gw.admin_get("/quota?tenant=acme").json()["quotas"] if q["name"] == "it-bytes"][0]
        self.assertEqual(q["bytes"], {"limit": 1000, "used": 1000, "remaining": 0}, q)
        self.assertEqual(q["period"], "month")

    def test_alert_quota_lets_requests_pass_and_says_so(self):
        """2 requests a day, alert-only: all 5 requests of globex pass; the 3rd to 5th carry X-Quota-Exceeded:
        requests; obsgw_quota_exceeded_total{quota="it-alert"} goes up by 3; a log line names the tenant. Four more
        excesses within the minute are flagged too, but each io thread logs a tenant's excess at most once a minute:
        1 or 2 lines (2 io threads) for the 7 excesses."""
        series = 'obsgw_quota_exceeded_total{quota="it-alert"}'
        before = metric_value(self.gw.metrics(), series)
        mark = len(self.gw.lines)
        rs = [request(self.gw.port, "GET", "/alert", as_tenant("globex")) for _ in range(5)]
        self.assertEqual([r.status for r in rs], [200] * 5)
        self.assertEqual([r.header("X-Quota-Exceeded") for r in rs], [None, None, "requests", "requests", "requests"])
        self.assertEqual(metric_value(self.gw.metrics(), series) - before, 3)
        deadline = time.monotonic() + 3
        while True:
            with self.gw._cond:
                lines = [l for l in self.gw.lines[mark:] if l.get("tenant") == "globex" and "quota" in l.get("msg", "")]
            if len(lines) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # Four more excesses within the minute: counted, and logged by no thread that logged already, so over
        # all 7 excesses at most one line per io thread.
        for _ in range(4):
            self.assertEqual(request(self.gw.port, "GET", "/alert", as_tenant("globex")).header("X-Quota-Exceeded"),
                             "requests")
        time.sleep(0.2)
        with self.gw._cond:
            lines = [l for l in self.gw.lines[mark:] if l.get("tenant") == "globex" and "quota" in l.get("msg", "")]
        self.assertIn(len(lines), (1, 2), lines)
        self.assertTrue(all(l["quota"] == "it-alert" and l["exceeded"] == "requests" for l in lines), lines)
        q = [q for q in self.gw.admin_get("/quota?tenant=globex").json()["quotas"] if q["name"] == "it-alert"][0]
        self.assertEqual(q["requests"], {"limit": 2, "used": 9, "remaining": 0}, q)
        self.assertEqual(q["mode"], "alert")


if __name__ == "__main__":
    unittest.main(verbosity=2)
