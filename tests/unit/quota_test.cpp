// Quotas on the in-process counter: enforcing and alert-only, per-tenant limits, bytes, the headers a client
// sees, and the usage the admin endpoint reports.

#include "obsgw/quota.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include "policies/quota_report.hpp"

namespace obsgw {
namespace {

using ::testing::HasSubstr;

std::string unique(const char* base) {
  static int n = 0;
  return std::string(base) + std::to_string(n++);
}

struct Result {
  std::string code;
  std::unique_ptr<Exchange> ex;
  Verdict verdict = Verdict::proceed();
};

Result run(const Policy& p, std::vector<std::string> tenants, std::uint64_t content_length = 0) {
  RequestHead head;
  head.method = "POST";
  head.path = "/push";
  if (content_length) head.framing = BodyFraming::content_length, head.content_length = content_length;
  Result r;
  r.ex = std::make_unique<Exchange>(std::move(head), ConnectionInfo{});
  r.ex->tenants = std::move(tenants);
  r.verdict = p.on_request(*r.ex);
  r.code = r.verdict.rejects() ? r.verdict.rejection().code : "proceed";
  return r;
}

std::string usage(const Policy& p, const std::string& tenant) {
  asio::io_context io;
  auto f = asio::co_spawn(io, dynamic_cast<const detail::QuotaReport&>(p).usage_json(tenant), asio::use_future);
  io.run();
  return f.get();
}

TEST(Quota, EnforcesPerTenantLimitsAndSaysWhenItResets) {
  QuotaOptions o;
  o.name = unique("q");
  o.period = QuotaPeriod::day;
  o.limits.requests = 3;
  o.tenants["big"].requests = 5;
  auto q = make_quota(o);
  EXPECT_EQ(q->phase(), Phase::limit);
  for (int i = 0; i < 3; ++i) {
    auto r = run(*q, {"acme"});
    ASSERT_EQ(r.code, "proceed");
    EXPECT_EQ(r.ex->response_headers.get("X-Quota-Remaining-Requests"), std::to_string(2 - i));
    EXPECT_TRUE(r.ex->response_headers.contains("X-Quota-Reset"));
  }
  auto refused = run(*q, {"acme"});
  ASSERT_EQ(refused.code, "quota_exceeded");
  EXPECT_EQ(refused.verdict.rejection().status, 429);
  EXPECT_THAT(refused.verdict.rejection().message, HasSubstr("tenant \"acme\" reached its daily quota of 3 requests"));
  EXPECT_THAT(refused.verdict.rejection().message, HasSubstr("T00:00:00Z"));
  ASSERT_FALSE(refused.verdict.rejection().headers.empty());
  EXPECT_EQ(refused.verdict.rejection().headers[0].name, "Retry-After");
  const long retry = std::stol(refused.verdict.rejection().headers[0].value);
  EXPECT_GT(retry, 0);
  EXPECT_LE(retry, 86400);
  auto detail = [&](std::string_view n) {
    for (const auto& d : refused.verdict.rejection().details)
      if (d.name == n) return d.json;
    return std::string("<none>");
  };
  EXPECT_EQ(detail("quota"), "\"" + o.name + "\"");
  EXPECT_EQ(detail("tenant"), "\"acme\"");
  EXPECT_EQ(detail("exceeded"), "\"requests\"");
  EXPECT_THAT(detail("reset"), HasSubstr("T00:00:00Z"));
  EXPECT_EQ(detail("retry_after_s"), std::to_string(retry));
  int big = 0;
  for (int i = 0; i < 7; ++i) big += run(*q, {"big"}).code == "proceed";
  EXPECT_EQ(big, 5);
  EXPECT_EQ(run(*q, {}).code, "proceed");  // no tenant: not counted

  auto u = usage(*q, "acme");
  EXPECT_THAT(u, HasSubstr("\"period\":\"day\""));
  EXPECT_THAT(u, HasSubstr("\"requests\":{\"limit\":3,\"used\":3,\"remaining\":0}"));
  EXPECT_THAT(u, HasSubstr("\"bytes\":{\"limit\":null,\"used\":0,\"remaining\":null}"));
  EXPECT_THAT(u, HasSubstr("\"mode\":\"enforce\""));
}

TEST(Quota, AlertOnlyLetsThroughAndFlags) {
  QuotaOptions o;
  o.name = unique("alert");
  o.mode = QuotaMode::alert;
  o.limits.bytes = 1000;
  auto q = make_quota(o);
  auto first = run(*q, {"acme"}, 600);
  ASSERT_EQ(first.code, "proceed");
  EXPECT_EQ(first.ex->response_headers.get("X-Quota-Remaining-Bytes"), "400");
  EXPECT_FALSE(first.ex->response_headers.contains("X-Quota-Exceeded"));
  auto over = run(*q, {"acme"}, 600);
  ASSERT_EQ(over.code, "proceed");
  EXPECT_EQ(over.ex->response_headers.get("X-Quota-Exceeded"), "bytes");
  EXPECT_EQ(over.ex->response_headers.get("X-Quota-Remaining-Bytes"), "0");
  EXPECT_THAT(usage(*q, "acme"), HasSubstr("\"bytes\":{\"limit\":1000,\"used\":1200,\"remaining\":0}"));
  EXPECT_THAT(usage(*q, "acme"), HasSubstr("\"period\":\"month\""));
}

TEST(Quota, ChunkedBodiesAreCountedWhenRead) {
  QuotaOptions o;
  o.name = unique("chunked");
  o.limits.bytes = 100;
  auto q = make_quota(o);
  RequestHead head;
  head.method = "POST";
  head.framing = BodyFraming::chunked;
  Exchange ex(std::move(head), ConnectionInfo{});
  ex.tenants = {"acme"};
  ASSERT_TRUE(q->on_request(ex).proceeds());
  ex.outcome.bytes_in = 150;
  q->on_complete(ex);
  EXPECT_THAT(usage(*q, "acme"), HasSubstr("\"used\":150"));
  EXPECT_EQ(run(*q, {"acme"}, 1).code, "quota_exceeded");
}

TEST(Quota, InvalidNamesAreRefused) {
  QuotaOptions o;
  EXPECT_THROW(make_quota(o), std::invalid_argument);
  o.name = "a:b";
  EXPECT_THROW(make_quota(o), std::invalid_argument);
}

}  // namespace
}  // namespace obsgw
