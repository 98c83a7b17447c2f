#include "obsgw/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

namespace obsgw {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> problems_of(std::string_view json) {
  try {
    parse_config(json);
  } catch (const ConfigError& e) {
    return e.problems();
  }
  return {};
}

constexpr std::string_view kValid = R"({
  "server": {"listen": ["127.0.0.1:8080", "[::1]:8080"], "admin_listen": "127.0.0.1:9901", "threads": 2,
             "limits": {"max_body_bytes": 1048576}, "timeouts": {"header_ms": 5000}},
  "logging": {"level": "debug", "access_log": false},
  "upstreams": {"loki": {"url": "http://127.0.0.1:3100/base/", "read_timeout_ms": 1000}},
  "routes": [
    {"name": "push", "match": {"path": "/loki/api/v1/push", "methods": ["POST"]}, "upstream": "loki",
     "policies": [{"type": "headers", "request": {"set": {"X-A": "1"}, "remove": ["X-B"]}}]},
    {"name": "rest", "match": {"host": "*.example.com", "path_prefix": "/api"}, "upstream": "loki", "rewrite_prefix": "/"}
  ]
})";

TEST(Config, ParsesValidConfigWithDefaults) {
  Config c = parse_config(kValid);
  ASSERT_EQ(c.server.listeners.size(), 2u);
  EXPECT_EQ(c.server.listeners[1].host, "::1");
  EXPECT_EQ(c.server.listeners[1].port, 8080);
  ASSERT_TRUE(c.server.admin);
  EXPECT_EQ(c.server.admin->port, 9901);
  EXPECT_EQ(c.server.threads, 2u);
  EXPECT_EQ(c.server.limits.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.limits.max_header_bytes, HttpLimits{}.max_header_bytes);
  EXPECT_EQ(c.server.timeouts.header.count(), 5000);
  EXPECT_EQ(c.server.timeouts.idle, HttpTimeouts{}.idle);
  EXPECT_EQ(c.logging.level, LogLevel::debug);
  EXPECT_FALSE(c.logging.access_log);
  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_EQ(c.upstreams[0].name, "loki");
  EXPECT_EQ(c.upstreams[0].read_timeout.count(), 1000);
  EXPECT_EQ(c.upstreams[0].connect_timeout, UpstreamOptions{}.connect_timeout);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_FALSE(c.routes[0].match.prefix);
  EXPECT_THAT(c.routes[0].match.methods, ElementsAre("POST"));
  EXPECT_EQ(c.routes[1].match.host, "*.example.com");
  EXPECT_TRUE(c.routes[1].has_rewrite);
}

TEST(Config, BuildsAGatewayThatRoutes) {
  auto gw = build_gateway(parse_config(kValid), 1);
  auto m = gw->router().match("a.example.com", "/api/x", "GET");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->name, "rest");
  EXPECT_EQ(m.route->policies.size(), 0u);
  EXPECT_EQ(gw->router().match("h", "/loki/api/v1/push", "POST").route->policies.size(), 1u);
}

TEST(Config, NamesTheUnknownUpstream) {
  auto p = problems_of(R"({"upstreams": {"loki": {"url": "http://a:1"}},
    "routes": [{"name": "a", "upstream": "loki"}, {"name": "b", "upstream": "loki"},
               {"name": "c", "upstream": "lokii"}]})");
  EXPECT_THAT(p, ElementsAre(R"(routes[2].upstream: unknown upstream "lokii")"));
}

TEST(Config, UnknownKeysAreErrorsAtEveryLevel) {
  auto p = problems_of(R"({"server": {"limits": {"max_bodybytes": 1}}, "extra": 1,
    "upstreams": {"u": {"url": "http://a:1", "timeout": 5}},
    "routes": [{"name": "r", "upstream": "u", "match": {"prefix": "/"}}]})");
  EXPECT_THAT(p, ElementsAre(HasSubstr("extra: unknown key"), HasSubstr("server.limits.max_bodybytes: unknown key"),
                             HasSubstr("upstreams.u.timeout: unknown key"), HasSubstr("routes[0].match.prefix: unknown key")));
}

TEST(Config, WrongTypesAndRanges) {
  auto p = problems_of(R"({"server": {"threads": "two", "max_connections": 0, "listen": ["nohost"],
                                      "timeouts": {"idle_ms": 1.5}}, "logging": {"level": "loud"}})");
  EXPECT_THAT(p, ElementsAre(R"(server.listen[0]: "nohost" is not host:port (IPv6 as [addr]:port))",
                             "server.threads: expected an integer, got a string",
                             "server.max_connections: must be between 1 and 10000000, got 0",
                             "server.timeouts.idle_ms: expected an integer, got a fraction",
                             R"(logging.level: "loud" is not one of debug, info, warn, error, off)"));
}

TEST(Config, RouteProblems) {
  auto p = problems_of(R"({"upstreams": {"u": {"url": "ftp://x"}},
    "routes": [{"match": {"path": "nope", "path_prefix": "/x", "methods": ["GE T"]}, "upstream": "u",
                "policies": [{"type": "magic"}, {"type": "headers", "request": {"set": {"Content-Length": "1"}}}]},
               {"name": "dup", "upstream": "u"}, {"name": "dup", "upstream": "u"}]})");
  EXPECT_THAT(p, ::testing::IsSupersetOf({
                     HasSubstr("upstreams.u.url: \"ftp://x\" must start with http:// or https://"),
                     HasSubstr("routes[0].name: required"),
                     HasSubstr("routes[0].match: give either path or path_prefix, not both"),
                     HasSubstr("routes[0].match.path: must start with '/'"),
                     HasSubstr("routes[0].match.methods: \"GE T\" is not a valid method"),
                     HasSubstr("routes[0].policies[0].type: unknown policy type \"magic\""),
                     HasSubstr("routes[0].policies[1]: request: header \"Content-Length\" is managed by the proxy"),
                     HasSubstr("routes[2].name: route \"dup\" is defined twice")}));
}

TEST(Config, TlsFilesMustBeReadable) {
  auto p = problems_of(R"({"server": {"tls": [{"listen": "127.0.0.1:8443", "cert_file": "/nonexistent/c.pem"}]}})");
  EXPECT_THAT(p, ElementsAre(HasSubstr("server.tls[0].cert_file: cannot read \"/nonexistent/c.pem\""),
                             HasSubstr("server.tls[0].key_file: required")));
}

TEST(Config, InvalidJsonAndDuplicateKeys) {
  EXPECT_THAT(problems_of("{\"server\": "), ElementsAre(HasSubstr("not valid JSON")));
  EXPECT_THAT(problems_of(R"({"server": {}, "server": {}})"), ElementsAre("server: duplicate key"));
  EXPECT_THAT(problems_of("[]"), ElementsAre("expected an object, got an array"));
}

TEST(Config, MissingFileIsAConfigError) {
  try {
    load_config_file("/nonexistent/gatewayd.json");
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/gatewayd.json: cannot open"));
  }
}

class NullPolicy final : public Policy {
 public:
  Phase phase() const noexcept override { return Phase::transform; }
  std::string_view name() const noexcept override { return "null"; }
  Verdict on_request(Exchange&) const override { return Verdict::proceed(); }
};

TEST(Config, RegistryAcceptsCustomPolicyTypes) {
  auto registry = PolicyRegistry::with_builtins();
  registry.add("null", [](const ConfigNode& node, ConfigProblems& p) -> std::shared_ptr<const Policy> {
    node.expect_object({"type", "level"}, p);
    node.get_int("level", 0, 0, 10, p);
    return std::make_shared<NullPolicy>();
  });
  std::string json = R"({"upstreams": {"u": {"url": "http://a:1"}},
    "routes": [{"name": "r", "upstream": "u", "policies": [{"type": "null", "level": 11}]}]})";
  try {
    parse_config(json, registry);
    FAIL() << "no exception";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.problems(), ElementsAre("routes[0].policies[0].level: must be between 0 and 10, got 11"));
  }
}

TEST(ListenAddress, Parsing) {
  EXPECT_EQ(parse_listen_address(":80")->host, "0.0.0.0");
  EXPECT_EQ(parse_listen_address("[::]:443")->host, "::");
  EXPECT_FALSE(parse_listen_address("::1:80"));
  EXPECT_FALSE(parse_listen_address("host:"));
  EXPECT_FALSE(parse_listen_address("host:70000"));
}

}  // namespace
}  // namespace obsgw

namespace obsgw {
namespace {

std::string identity_config(std::string_view policies, std::string_view route_extra = R"("upstream": "loki")") {
  return fmt::format(R"({{"upstreams": {{"loki": {{"url": "http://127.0.0.1:3100"}}}},
    "routes": [{{"name": "r", "match": {{"path_prefix": "/"}}, {}, "policies": [{}]}}]}})",
                     route_extra, policies);
}

TEST(ConfigIdentity, ProblemsNameTheExactKey) {
  auto p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"jwks_uri": "http://idp/jwks", "audiences": 5}]})"));
  EXPECT_THAT(p, ::testing::Contains(HasSubstr("routes[0].policies[0].providers[0].issuer: required")));
  EXPECT_THAT(p, ::testing::Contains(HasSubstr("routes[0].policies[0].providers[0].jwks_uri: \"http://idp/jwks\" must be an https:// URL")));
  EXPECT_THAT(p, ::testing::Contains(HasSubstr("routes[0].policies[0].providers[0].audiences")));

  p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"issuer": "https://i", "audiences": "a", "jwks_file": "/nonexistent/jwks.json"}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].providers[0].jwks_file: cannot read \"/nonexistent/jwks.json\"")));

  p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"issuer": "https://i", "any_audience": true, "discovery": true, "jwks_uri": "https://i/k"}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].providers[0]: give exactly one key source")));

  p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"issuer": "https://i", "audiences": ["a"], "discovery": true}], "token_sources": ["form:x"]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].token_sources: \"form:x\" is not one of")));

  p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"issuer": "https://i", "audiences": ["a"], "hmac_secret_env": "OBSGW_TEST_UNSET_SECRET"}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("providers[0].hmac_secret_env: environment variable \"OBSGW_TEST_UNSET_SECRET\" is not set")));

  p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"issuer": "https://i", "discovery": true}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].providers[0].audiences: required")));
  p = problems_of(identity_config(R"({"type": "jwt", "providers": [{"issuer": "https://i", "discovery": true, "audiences": ["a"], "min_refresh_interval_s": 0}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].providers[0].min_refresh_interval_s")));

  p = problems_of(identity_config(R"({"type": "tenant", "claim": "tenant_id", "mapping": {"g": "no way"}, "require_header": true})"));
  EXPECT_THAT(p, ::testing::UnorderedElementsAre(HasSubstr("routes[0].policies[0].mapping.g: \"no way\" is not a valid tenant id"),
                                                 HasSubstr("routes[0].policies[0].require_header: needs from_header: true")));

  p = problems_of(identity_config(R"({"type": "authorize"})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0]: requires nothing")));

  p = problems_of(identity_config(R"({"type": "authorize", "scopes": "logs:write"})", R"("forward_auth": true, "upstream": "loki")"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].forward_auth: a forward_auth route answers itself")));
}

TEST(ConfigIdentity, BrowserLoginProblemsNameTheExactKey) {
  auto p = problems_of(identity_config(R"({"type": "browser_login", "issuer": "http://idp", "client_id": "grafana"})"));
  EXPECT_THAT(p, ::testing::Contains(HasSubstr("routes[0].policies[0].issuer: \"http://idp\" must be an https:// URL")));
  EXPECT_THAT(p, ::testing::Contains(HasSubstr("routes[0].policies[0].redirect_url: required")));
  EXPECT_THAT(p, ::testing::Contains(HasSubstr("routes[0].policies[0]: give cookie_secret_files or cookie_secret_envs")));

  ::setenv("OBSGW_TEST_SHORT_COOKIE_SECRET", "0123456789", 1);
  p = problems_of(identity_config(R"({"type": "browser_login", "provider": "gitlab", "client_id": "g",
      "redirect_url": "https://g.example/oauth2/callback", "cookie_secret_envs": ["OBSGW_TEST_SHORT_COOKIE_SECRET"],
      "authorization_params": {"state": "x", "hd": 1}})"));
  EXPECT_THAT(p, ::testing::UnorderedElementsAre(
                     HasSubstr("routes[0].policies[0].provider: \"gitlab\" is not one of oidc, github"),
                     HasSubstr("routes[0].policies[0].cookie_secret_envs: the secret in OBSGW_TEST_SHORT_COOKIE_SECRET has 10 bytes"),
                     HasSubstr("routes[0].policies[0].authorization_params.state: set by the gateway itself"),
                     HasSubstr("routes[0].policies[0].authorization_params.hd: expected a string")));

  ::setenv("OBSGW_TEST_COOKIE_SECRET", "0123456789abcdef0123456789abcdef", 1);
  EXPECT_NO_THROW(parse_config(identity_config(R"({"type": "browser_login", "provider": "github", "client_id": "g",
      "client_secret_env": "OBSGW_TEST_COOKIE_SECRET", "redirect_url": "https://g.example/oauth2/callback",
      "cookie_secret_envs": ["OBSGW_TEST_COOKIE_SECRET"], "allowed_users": ["octocat"],
      "identity_headers": {"subject": "X-WEBAUTH-USER", "name": "X-WEBAUTH-NAME"}})")));
}

TEST(ConfigIdentity, BuildsAForwardAuthRouteWithTheGuardFirst) {
  auto c = parse_config(identity_config(R"({"type": "authorize", "scopes": ["logs:write"]})",
                                        R"("forward_auth": {"response_headers": ["X-Scope-OrgID"]})"));
  ASSERT_TRUE(c.routes[0].forward_auth);
  auto gw = build_gateway(c, 1);
  const auto& route = gw->router().routes()[0];
  ASSERT_EQ(route.policies.size(), 2u);  // nothing forwarded: no tenant-header step either
  EXPECT_EQ(route.policies[0]->name(), "forward_auth_guard");
  EXPECT_EQ(route.policies[1]->name(), "authorize");
  EXPECT_TRUE(route.forward_auth);
  EXPECT_EQ(route.forwarder->name(), "forward_auth");
}

}  // namespace
}  // namespace obsgw

namespace obsgw {
namespace {

TEST(ConfigTraffic, ProblemsNameTheExactKey) {
  auto p = problems_of(identity_config(R"({"type": "ip_rules", "allow": ["10.0.0.0/8", "10.*.1", 7]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].allow[1]: \"10.*.1\" a wildcard may only stand for whole trailing octets"),
                             HasSubstr("routes[0].policies[0].allow[2]: expected a string")));
  p = problems_of(identity_config(R"({"type": "ip_rules"})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0]: give \"allow\", \"deny\" or both")));

  p = problems_of(identity_config(R"({"type": "rate_limit", "limits": [{"key": "tenants", "rate": -1, "per": "week"}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].limits[0].key: \"tenants\" is not one of"),
                             HasSubstr("routes[0].policies[0].limits[0].rate: expected a number > 0"),
                             HasSubstr("routes[0].policies[0].limits[0].per: \"week\" is not one of second, minute, hour, day")));
  p = problems_of(identity_config(R"({"type": "rate_limit", "limits": [{"key": "header", "rate": 1, "per_ms": 10, "unit": "kb"}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("limits[0].header: required with key \"header\""), HasSubstr("limits[0].unit: \"kb\" is not one of")));
  p = problems_of(identity_config(R"({"type": "rate_limit", "limits": []})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].limits: required")));
  p = problems_of(identity_config(R"({"type": "rate_limit", "limits": [{"rate": 5}]})"));
  EXPECT_THAT(p, ElementsAre(HasSubstr("limits[0].per: required")));

  // One name, two definitions: refused, pointing at both.
  p = problems_of(R"({"upstreams": {"u": {"url": "http://127.0.0.1:1"}},
    "policies": [{"type": "rate_limit", "limits": [{"name": "shared", "rate": 5, "per": "second"}]}],
    "routes": [{"name": "r", "match": {"path_prefix": "/"}, "upstream": "u",
                "policies": [{"type": "rate_limit", "limits": [{"name": "shared", "rate": 9, "per": "second"}]}]}]})");
  EXPECT_THAT(p, ElementsAre(HasSubstr("routes[0].policies[0].limits[0].name: limit name \"shared\" is already used at policies[0].limits[0]")));

  p = problems_of(R"({"client_ip": {"trusted_proxies": ["10.0.0.0/8", "fd00::/300"]}, "region": "eu\u0001", "routes": []})");
  EXPECT_THAT(p, ElementsAre(HasSubstr("client_ip.trusted_proxies[1]: \"fd00::/300\" an IPv6 prefix length is at most 128"),
                             HasSubstr("region: must be 1 to 64 visible characters")));
}

TEST(ConfigTraffic, GlobalPoliciesRunOnEveryRouteAsOneObject) {
  auto c = parse_config(R"({"upstreams": {"u": {"url": "http://127.0.0.1:1"}},
    "client_ip": {"trusted_proxies": ["10.0.0.0/8"]}, "region": "eu-west",
    "policies": [{"type": "ip_rules", "deny": ["192.0.2.0/24"]},
                 {"type": "rate_limit", "limits": [{"name": "global", "key": "global", "rate": 100, "per": "second"}]}],
    "routes": [{"name": "a", "match": {"path_prefix": "/a"}, "upstream": "u",
                "policies": [{"type": "rate_limit", "limits": [{"key": "tenant", "rate": 5, "per": "minute", "burst": 10}]}]},
               {"name": "b", "match": {"path_prefix": "/b"}, "upstream": "u"}]})");
  auto gw = build_gateway(c, 1);
  EXPECT_EQ(gw->options().region, "eu-west");
  EXPECT_TRUE(gw->options().trusted_proxies.contains(asio::ip::make_address("10.1.1.1")));
  const auto& a = gw->router().routes()[0];
  const auto& b = gw->router().routes()[1];
  ASSERT_EQ(a.policies.size(), 3u);
  ASSERT_EQ(b.policies.size(), 2u);
  EXPECT_EQ(a.policies[0], b.policies[0]);  // the same objects: one global bucket
  EXPECT_EQ(a.policies[1], b.policies[1]);
  EXPECT_EQ(a.policies[0]->phase(), Phase::admit);
  EXPECT_EQ(a.policies[2]->phase(), Phase::limit);  // the tenant limit waits for the tenant
}

}  // namespace
}  // namespace obsgw
