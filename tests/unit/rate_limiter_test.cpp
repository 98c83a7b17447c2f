// Rate limits on the in-process store: GCRA bursts and refill, keys, several limits charged all or nothing,
// byte limits, exactness under concurrent io threads, and the 429 a client sees.

#include "obsgw/rate_limiter.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "limits/gcra.hpp"
#include "obsgw/limit_store.hpp"
#include "obsgw/router.hpp"

namespace obsgw {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Each test names its limits uniquely: the in-process store is one per process and keeps buckets by name.
std::string unique(const char* base) {
  static std::atomic<int> n{0};
  return std::string(base) + "-" + std::to_string(n++);
}

LimitSpec spec(std::string name, LimitKey key, double rate, std::chrono::milliseconds per, double burst = 0) {
  LimitSpec s;
  s.name = std::move(name);
  s.key = key;
  s.rate = rate;
  s.period = per;
  s.burst = burst;
  return s;
}

struct Request {
  std::string ip = "192.0.2.1";
  std::vector<std::string> tenants;
  std::string subject;
  std::vector<std::pair<std::string, std::string>> headers;
  std::uint64_t content_length = 0;
  bool chunked = false;
};

std::unique_ptr<Exchange> exchange(const Request& r) {
  RequestHead head;
  head.method = "POST";
  head.path = "/push";
  for (const auto& [n, v] : r.headers) head.headers.add(n, v);
  if (r.chunked) head.framing = BodyFraming::chunked;
  else if (r.content_length) head.framing = BodyFraming::content_length, head.content_length = r.content_length;
  ConnectionInfo c;
  c.peer_address = asio::ip::make_address(r.ip);
  auto ex = std::make_unique<Exchange>(std::move(head), c);
  ex->tenants = r.tenants;
  if (!r.subject.empty()) {
    auto id = std::make_shared<Identity>();
    id->method = "jwt";
    id->subject = r.subject;
    ex->identity = id;
  }
  return ex;
}

std::string decide(const Policy& p, const Request& r = {}) {
  auto ex = exchange(r);
  auto v = p.on_request(*ex);
  return v.rejects() ? v.rejection().code : "proceed";
}

int admitted(const Policy& p, int attempts, const Request& r = {}) {
  int n = 0;
  for (int i = 0; i < attempts; ++i) n += decide(p, r) == "proceed";
  return n;
}

TEST(Gcra, BurstThenSteadyRate) {
  // 10 per second (100 ms apart), bursts of 3.
  const double interval = 100e6, tolerance = 3 * interval;
  std::int64_t tat = 0, now = 1'000'000'000;
  int passed = 0;
  for (int i = 0; i < 5; ++i) {
    auto s = limits::gcra_step(tat, now, interval, tolerance, 1, false);
    if (s.allowed) tat = s.new_tat, ++passed;
  }
  EXPECT_EQ(passed, 3);
  auto refused = limits::gcra_step(tat, now, interval, tolerance, 1, false);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ns, 100'000'000);
  EXPECT_EQ(refused.remaining, 0);
  // 100 ms later exactly one more fits.
  now += 100'000'000;
  auto again = limits::gcra_step(tat, now, interval, tolerance, 1, false);
  EXPECT_TRUE(again.allowed);
  EXPECT_EQ(again.remaining, 0);
  EXPECT_EQ(again.reset_ns, 300'000'000);
  // A forced charge always passes and puts the bucket in debt; a zero cost is then refused.
  auto debt = limits::gcra_step(again.new_tat, now, interval, tolerance, 10, true);
  EXPECT_TRUE(debt.allowed);
  EXPECT_FALSE(limits::gcra_step(debt.new_tat, now, interval, tolerance, 0, false).allowed);
}

TEST(RateLimiter, BurstIsExactAndTheRefusalIsExplained) {
  RateLimitOptions o;
  std::string name = unique("per-ip");
  o.limits = {spec(name, LimitKey::client_ip, 5, 1h)};
  auto p = make_rate_limiter(o);
  EXPECT_EQ(p->phase(), Phase::admit);
  EXPECT_EQ(admitted(*p, 5), 5);
  auto ex = exchange({});
  auto v = p->on_request(*ex);
  ASSERT_TRUE(v.rejects());
  const auto& r = v.rejection();
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.code, "rate_limited");
  EXPECT_THAT(r.message, HasSubstr("\"" + name + "\""));
  EXPECT_THAT(r.message, HasSubstr("5 requests per 3600 s, per client_ip"));
  auto header = [&](std::string_view n) {
    for (const auto& h : r.headers)
      if (iequals(h.name, n)) return h.value;
    return std::string("<none>");
  };
  EXPECT_EQ(header("Retry-After"), "720");  // one request's worth: an hour / 5
  // The same facts as members of the JSON body, for programs.
  ASSERT_EQ(r.details.size(), 2u);
  EXPECT_EQ(r.details[0].name, "limit");
  EXPECT_EQ(r.details[0].json, "\"" + name + "\"");
  EXPECT_EQ(r.details[1].name, "retry_after_s");
  EXPECT_EQ(r.details[1].json, "720");
  EXPECT_EQ(header("RateLimit-Limit"), "5");
  EXPECT_EQ(header("RateLimit-Remaining"), "0");
  EXPECT_EQ(header("RateLimit-Reset"), "3600");
  EXPECT_EQ(header("RateLimit-Policy"), "5;w=3600");
  // Another address has its own bucket.
  EXPECT_EQ(decide(*p, {.ip = "2001:db8::1"}), "proceed");
}

TEST(RateLimiter, AdmittedResponsesCarryTheTightestLimit) {
  RateLimitOptions o;
  o.limits = {spec(unique("loose"), LimitKey::global, 100, 1min), spec(unique("tight"), LimitKey::client_ip, 4, 1min, 2)};
  auto p = make_rate_limiter(o);
  auto ex = exchange({});
  ASSERT_TRUE(p->on_request(*ex).proceeds());
  EXPECT_EQ(ex->response_headers.get("RateLimit-Limit"), "2");
  EXPECT_EQ(ex->response_headers.get("RateLimit-Remaining"), "1");
  EXPECT_EQ(ex->response_headers.get("RateLimit-Policy"), "4;w=60;burst=2");
  o.response_headers = false;
  o.limits = {spec(unique("quiet"), LimitKey::global, 100, 1min)};
  auto quiet = make_rate_limiter(o);
  auto ex2 = exchange({});
  ASSERT_TRUE(quiet->on_request(*ex2).proceeds());
  EXPECT_FALSE(ex2->response_headers.contains("RateLimit-Limit"));
}

TEST(RateLimiter, SeveralLimitsAreChargedAllOrNothing) {
  RateLimitOptions o;
  o.limits = {spec(unique("global"), LimitKey::global, 3, 1h), spec(unique("per-ip"), LimitKey::client_ip, 2, 1h)};
  auto p = make_rate_limiter(o);
  EXPECT_EQ(admitted(*p, 5, {.ip = "192.0.2.1"}), 2);  // the per-ip limit refuses the 3rd..5th
  // Those refusals did not use up the global limit: one more address still fits, then the global limit is full.
  EXPECT_EQ(decide(*p, {.ip = "192.0.2.2"}), "proceed");
  EXPECT_EQ(decide(*p, {.ip = "192.0.2.3"}), "rate_limited");
}

TEST(RateLimiter, KeysSeparateBuckets) {
  auto one_per = [](LimitKey k, std::string header = {}) {
    RateLimitOptions o;
    o.limits = {spec(unique("k"), k, 1, 1h)};
    o.limits[0].header = std::move(header);
    return make_rate_limiter(o);
  };
  auto tenant = one_per(LimitKey::tenant);
  EXPECT_EQ(tenant->phase(), Phase::limit);
  EXPECT_EQ(decide(*tenant, {.tenants = {"acme"}}), "proceed");
  EXPECT_EQ(decide(*tenant, {.ip = "192.0.2.9", .tenants = {"acme"}}), "rate_limited");
  EXPECT_EQ(decide(*tenant, {.tenants = {"globex"}}), "proceed");
  // A federated query is charged to each of its tenants (not to a bucket of its own: reordering "a|b" must not
  // mint fresh buckets), all or nothing.
  EXPECT_EQ(decide(*tenant, {.tenants = {"globex", "acme"}}), "rate_limited");
  EXPECT_EQ(decide(*tenant, {.tenants = {"initech", "umbrella"}}), "proceed");
  EXPECT_EQ(decide(*tenant, {.tenants = {"umbrella"}}), "rate_limited");
  EXPECT_EQ(decide(*tenant, {}), "proceed");                               // no tenant: one shared "-" bucket
  EXPECT_EQ(decide(*tenant, {}), "rate_limited");

  // IPv6 clients are grouped by /64: one host usually holds a whole /64.
  auto ip = one_per(LimitKey::client_ip);
  EXPECT_EQ(decide(*ip, {.ip = "2001:db8:1:2::1"}), "proceed");
  EXPECT_EQ(decide(*ip, {.ip = "2001:db8:1:2:ffff::99"}), "rate_limited");
  EXPECT_EQ(decide(*ip, {.ip = "2001:db8:1:3::1"}), "proceed");

  auto subject = one_per(LimitKey::subject);
  EXPECT_EQ(subject->phase(), Phase::limit);
  EXPECT_EQ(decide(*subject, {.subject = "agent-a"}), "proceed");
  EXPECT_EQ(decide(*subject, {.subject = "agent-a"}), "rate_limited");
  EXPECT_EQ(decide(*subject, {.subject = "agent-b"}), "proceed");

  auto header = one_per(LimitKey::header, "X-Api-Client");
  EXPECT_EQ(header->phase(), Phase::admit);
  EXPECT_EQ(decide(*header, {.headers = {{"X-Api-Client", "a"}}}), "proceed");
  EXPECT_EQ(decide(*header, {.headers = {{"x-api-client", "a"}}}), "rate_limited");
  EXPECT_EQ(decide(*header, {.headers = {{"X-Api-Client", "b"}}}), "proceed");
}

TEST(RateLimiter, BytesAreChargedByContentLengthOrAfterAChunkedBody) {
  RateLimitOptions o;
  o.limits = {spec(unique("bytes"), LimitKey::tenant, 1000, 1h)};
  o.limits[0].unit = LimitUnit::bytes;
  auto p = make_rate_limiter(o);
  Request r{.tenants = {"acme"}, .content_length = 600};
  EXPECT_EQ(decide(*p, r), "proceed");
  EXPECT_EQ(decide(*p, r), "rate_limited");  // 1200 > 1000
  r.content_length = 400;
  EXPECT_EQ(decide(*p, r), "proceed");
  r.content_length = 1001;
  EXPECT_EQ(decide(*p, r), "body_exceeds_rate_limit");  // could never pass: 413, not 429

  Request chunked{.tenants = {"globex"}, .chunked = true};
  auto ex = exchange(chunked);
  ASSERT_TRUE(p->on_request(*ex).proceeds());  // not in debt: let in
  ex->outcome.bytes_in = 5000;
  p->on_complete(*ex);  // its real size is charged now
  EXPECT_EQ(decide(*p, chunked), "rate_limited");
  EXPECT_EQ(decide(*p, {.tenants = {"globex"}, .content_length = 1}), "rate_limited");
}

TEST(RateLimiter, RefillsAtTheConfiguredRate) {
  RateLimitOptions o;
  o.limits = {spec(unique("refill"), LimitKey::global, 1000, 1s, 1)};  // one per millisecond, no burst
  auto p = make_rate_limiter(o);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(decide(*p), "proceed");
  EXPECT_EQ(decide(*p), "rate_limited");
  std::this_thread::sleep_for(30ms);
  int n = admitted(*p, 200);
  auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, elapsed_ms + 1);  // never more than the time that passed allows
}

TEST(RateLimiter, ExactAcrossThreads) {
  RateLimitOptions o;
  o.limits = {spec(unique("threads"), LimitKey::global, 1000, 1h), spec(unique("threads-ip"), LimitKey::client_ip, 100000, 1h)};
  auto p = make_rate_limiter(o);
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      Request r{.ip = "192.0.2." + std::to_string(t + 1)};
      total += admitted(*p, 2000, r);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(total.load(), 1000);
}

TEST(RateLimiter, InvalidSpecsAreRefused) {
  RateLimitOptions o;
  EXPECT_THROW(make_rate_limiter(o), std::invalid_argument);
  o.limits = {spec("x", LimitKey::global, 0, 1s)};
  EXPECT_THROW(make_rate_limiter(o), std::invalid_argument);
  o.limits = {spec("x", LimitKey::header, 1, 1s)};
  EXPECT_THROW(make_rate_limiter(o), std::invalid_argument);
  o.limits = {spec("", LimitKey::global, 1, 1s)};
  EXPECT_THROW(make_rate_limiter(o), std::invalid_argument);
}

}  // namespace
}  // namespace obsgw
