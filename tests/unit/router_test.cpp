#include "obsgw/router.hpp"

#include <gtest/gtest.h>

#include "obsgw/exchange.hpp"

namespace obsgw {
namespace {

class NamedForwarder final : public Forwarder {
 public:
  explicit NamedForwarder(std::string n) : name_(std::move(n)) {}
  std::string_view name() const noexcept override { return name_; }
  asio::awaitable<void> forward(Exchange&, Downstream&) const override { co_return; }

 private:
  std::string name_;
};

Route route(std::string name, std::string host, std::string path, bool prefix, std::vector<std::string> methods = {}) {
  Route r;
  r.name = std::move(name);
  r.match.host = std::move(host);
  r.match.path = std::move(path);
  r.match.prefix = prefix;
  r.match.methods = std::move(methods);
  r.forwarder = std::make_shared<NamedForwarder>("u");
  return r;
}

std::string matched(const Router& router, std::string_view host, std::string_view path, std::string_view method = "GET") {
  auto m = router.match(host, path, method);
  return m.route ? m.route->name : "";
}

TEST(Router, ExactPathBeatsPrefix) {
  Router r({route("prefix", "", "/api", true), route("exact", "", "/api/push", false)});
  EXPECT_EQ(matched(r, "h", "/api/push"), "exact");
  EXPECT_EQ(matched(r, "h", "/api/query"), "prefix");
}

TEST(Router, LongerPrefixWins) {
  Router r({route("short", "", "/", true), route("long", "", "/loki/api", true)});
  EXPECT_EQ(matched(r, "h", "/loki/api/v1/push"), "long");
  EXPECT_EQ(matched(r, "h", "/other"), "short");
}

TEST(Router, PrefixMatchesAtSegmentBoundary) {
  Router r({route("api", "", "/api", true), route("slash", "", "/static/", true)});
  EXPECT_EQ(matched(r, "h", "/api"), "api");
  EXPECT_EQ(matched(r, "h", "/api/x"), "api");
  EXPECT_EQ(matched(r, "h", "/apix"), "");
  EXPECT_EQ(matched(r, "h", "/static/a.js"), "slash");
  EXPECT_EQ(matched(r, "h", "/static"), "");
}

TEST(Router, HostSpecificityBeforePath) {
  Router r({route("any-exact", "", "/a/b", false), route("wild", "*.example.com", "/", true),
            route("host", "api.example.com", "/a", true), route("longer-wild", "*.eu.example.com", "/", true)});
  EXPECT_EQ(matched(r, "api.example.com", "/a/b"), "host");  // exact host beats an exact path on any host
  EXPECT_EQ(matched(r, "api.example.com", "/z"), "wild");     // host route had no match: wildcard next
  EXPECT_EQ(matched(r, "x.eu.example.com", "/z"), "longer-wild");
  EXPECT_EQ(matched(r, "example.com", "/a/b"), "any-exact");  // "*.example.com" needs a subdomain
  EXPECT_EQ(matched(r, "other", "/a/b"), "any-exact");
}

TEST(Router, HostPatternIsCaseInsensitive) {
  Router r({route("host", "API.Example.com", "/", true)});
  EXPECT_EQ(matched(r, "api.example.com", "/"), "host");
}

TEST(Router, MethodsFallThroughAndReport405) {
  Router r({route("push", "", "/push", false, {"POST"}), route("all", "", "/p", true)});
  EXPECT_EQ(matched(r, "h", "/push", "POST"), "push");
  auto m = r.match("h", "/push", "GET");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "POST");
}

TEST(Router, MethodMismatchDoesNotFallThroughToLessSpecificRoutes) {
  // A method list is access control: GET /admin must not reach the catch-all.
  Router r({route("admin", "", "/admin", false, {"GET"}), route("all", "", "/", true),
            route("push", "", "/api/push", true, {"POST"}), route("push-put", "", "/api/push", true, {"PUT", "POST"}),
            route("api", "", "/api", true)});
  auto m = r.match("h", "/admin", "DELETE");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET");
  auto p = r.match("h", "/api/push/x", "GET");
  EXPECT_EQ(p.route, nullptr);
  EXPECT_EQ(p.allow, "POST, PUT");
  EXPECT_EQ(matched(r, "h", "/api/push/x", "PUT"), "push-put");
  EXPECT_EQ(matched(r, "h", "/api/other", "GET"), "api");
}

TEST(Router, HostGroupWithPathMatchButWrongMethodIs405) {
  Router r({route("host-get", "a.example", "/x", true, {"GET"}), route("any", "", "/x", true)});
  EXPECT_EQ(r.match("a.example", "/x", "POST").route, nullptr);
  EXPECT_EQ(matched(r, "b.example", "/x", "POST"), "any");
}

TEST(Router, DeclarationOrderBreaksTies) {
  Router r({route("first", "", "/x", true, {"GET"}), route("second", "", "/x", true)});
  EXPECT_EQ(matched(r, "h", "/x"), "first");
  EXPECT_EQ(matched(r, "h", "/x", "POST"), "second");
}

TEST(Router, RejectsInvalidRoutes) {
  EXPECT_THROW(Router({route("a", "", "/", true), route("a", "", "/b", true)}), std::invalid_argument);
  EXPECT_THROW(Router({route("a", "", "nope", true)}), std::invalid_argument);
  Route no_upstream = route("a", "", "/", true);
  no_upstream.forwarder = nullptr;
  EXPECT_THROW(Router({no_upstream}), std::invalid_argument);
}

class PhasePolicy final : public Policy {
 public:
  PhasePolicy(Phase p, std::string n) : phase_(p), name_(std::move(n)) {}
  Phase phase() const noexcept override { return phase_; }
  std::string_view name() const noexcept override { return name_; }
  Verdict on_request(Exchange&) const override { return Verdict::proceed(); }

 private:
  Phase phase_;
  std::string name_;
};

TEST(Router, OrdersPoliciesByPhaseKeepingListedOrder) {
  Route r = route("r", "", "/", true);
  r.policies = {std::make_shared<PhasePolicy>(Phase::sign, "sign"), std::make_shared<PhasePolicy>(Phase::transform, "t1"),
                std::make_shared<PhasePolicy>(Phase::authenticate, "auth"),
                std::make_shared<PhasePolicy>(Phase::transform, "t2"), std::make_shared<PhasePolicy>(Phase::limit, "limit")};
  Router router({r});
  std::vector<std::string> names;
  for (const auto& p : router.routes()[0].policies) names.emplace_back(p->name());
  // An authenticating route without a tenant policy also drops the client's tenant header once authenticated.
  EXPECT_EQ(names, (std::vector<std::string>{"auth", "untrusted_tenant_header", "limit", "t1", "t2", "sign"}));
}

TEST(Router, ClientTenantHeaderIsDroppedOnlyWhereNothingVouchesForIt) {
  auto names_of = [](const Route& r) {
    std::vector<std::string> names;
    for (const auto& p : r.policies) names.emplace_back(p->name());
    return names;
  };
  auto auth = std::make_shared<PhasePolicy>(Phase::authenticate, "auth");
  auto tenant = std::make_shared<PhasePolicy>(Phase::resolve_tenant, "tenant");
  auto limit = std::make_shared<PhasePolicy>(Phase::limit, "limit");
  Route authenticated = route("authenticated", "", "/a", true);
  authenticated.policies = {limit, auth};
  Route resolved = route("resolved", "", "/b", true);
  resolved.policies = {auth, tenant};
  Route trusted = route("trusted", "", "/c", true);
  trusted.policies = {auth};
  trusted.trust_client_tenant_header = true;
  Route open = route("open", "", "/d", true);
  open.policies = {limit};
  Router router({authenticated, resolved, trusted, open});
  const auto& rs = router.routes();
  EXPECT_EQ(names_of(rs[0]), (std::vector<std::string>{"auth", "untrusted_tenant_header", "limit"}));
  EXPECT_EQ(names_of(rs[1]), (std::vector<std::string>{"auth", "tenant"}));
  EXPECT_EQ(names_of(rs[2]), (std::vector<std::string>{"auth"}));
  EXPECT_EQ(names_of(rs[3]), (std::vector<std::string>{"limit"}));
  // A router built again from its routes (a reload keeps Route values) does not add a second one.
  Router again(rs);
  EXPECT_EQ(names_of(again.routes()[0]), names_of(rs[0]));
  // What it does: the header goes, whatever its case; the rest stays.
  RequestHead head;
  head.method = "GET";
  head.path = "/a";
  head.headers.add("x-scope-orgid", "victim");
  head.headers.add("X-Other", "kept");
  Exchange ex(std::move(head), ConnectionInfo{});
  EXPECT_TRUE(rs[0].policies[1]->on_request(ex).proceeds());
  EXPECT_FALSE(ex.request().headers.contains("X-Scope-OrgID"));
  EXPECT_EQ(ex.request().headers.get("X-Other"), "kept");
}

}  // namespace
}  // namespace obsgw
