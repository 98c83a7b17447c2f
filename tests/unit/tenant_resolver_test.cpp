// Tenant resolution and per-route authorization on identities as an authenticator leaves them.

#include "obsgw/tenant_resolver.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "obsgw/authorization.hpp"

namespace obsgw {
namespace {

using ::testing::ElementsAre;

std::shared_ptr<const Identity> identity(std::string claims_json, std::vector<std::string> scopes = {},
                                         std::vector<std::string> groups = {}) {
  auto id = std::make_shared<Identity>();
  id->method = "jwt";
  id->subject = "agent-a";
  id->client_id = "agent-a-client";
  id->claims_json = std::move(claims_json);
  id->scopes = std::move(scopes);
  id->groups = std::move(groups);
  return id;
}

struct Result {
  Verdict verdict = Verdict::proceed();
  std::unique_ptr<Exchange> ex;
  std::string code() const { return verdict.rejects() ? verdict.rejection().code : "proceed"; }
  int status() const { return verdict.rejects() ? verdict.rejection().status : 0; }
  std::string upstream_tenant() const { return std::string(ex->request().headers.get("X-Scope-OrgID").value_or("<none>")); }
};

Result run(const Policy& p, std::shared_ptr<const Identity> id, std::vector<std::string> client_tenant_headers = {}) {
  RequestHead head;
  head.method = "GET";
  head.path = "/";
  for (const auto& v : client_tenant_headers) head.headers.add("X-Scope-OrgID", v);
  Result r;
  r.ex = std::make_unique<Exchange>(std::move(head), ConnectionInfo{});
  r.ex->identity = std::move(id);
  r.verdict = p.on_request(*r.ex);
  return r;
}

TEST(TenantId, ValidationFollowsLokiAndMimir) {
  for (const char* ok : {"acme", "tenant-a", "A_b.c!*'()", "1"}) EXPECT_TRUE(is_valid_tenant_id(ok)) << ok;
  for (const char* bad : {"", ".", "..", "a|b", "a/b", "a b", "tenant\n", "ä"}) EXPECT_FALSE(is_valid_tenant_id(bad)) << bad;
  EXPECT_TRUE(is_valid_tenant_id(std::string(150, 'a')));
  EXPECT_FALSE(is_valid_tenant_id(std::string(151, 'a')));
}

TEST(TenantResolver, FromAClaimReplacesTheClientsHeader) {
  TenantResolverOptions o;
  o.claim = "tenant_id";
  auto p = make_tenant_resolver(o);
  auto r = run(*p, identity(R"({"tenant_id":"tenant-a"})"), {"tenant-b"});
  EXPECT_EQ(r.code(), "proceed");
  EXPECT_EQ(r.upstream_tenant(), "tenant-a");
  EXPECT_EQ(r.ex->request().headers.count("X-Scope-OrgID"), 1u);
  EXPECT_THAT(r.ex->tenants, ElementsAre("tenant-a"));
  // Nested claims, and a claim that is not a valid tenant id.
  o.claim = "org.tenant";
  EXPECT_EQ(run(*make_tenant_resolver(o), identity(R"({"org":{"tenant":"nested"}})")).upstream_tenant(), "nested");
  EXPECT_EQ(run(*make_tenant_resolver(o), identity(R"({"org":{"tenant":"../etc"}})")).code(), "no_tenant");
  EXPECT_EQ(run(*make_tenant_resolver(o), identity(R"({"other":1})")).status(), 403);
  EXPECT_EQ(run(*make_tenant_resolver(o), nullptr).status(), 401);
}

TEST(TenantResolver, GroupsWithPrefixMappingHeaderChoiceAndFederation) {
  TenantResolverOptions o;
  o.claim = "groups";
  o.strip_prefix = "obs-tenant-";
  o.mapping = {{"legacy-team", "globex"}};
  o.from_header = true;
  auto p = make_tenant_resolver(o);
  auto id = identity(R"({"groups":["obs-tenant-acme","legacy-team","staff"]})");
  EXPECT_EQ(run(*p, id, {"acme"}).upstream_tenant(), "acme");
  EXPECT_EQ(run(*p, id, {"globex"}).upstream_tenant(), "globex");
  EXPECT_EQ(run(*p, id, {"staff"}).code(), "tenant_not_allowed");
  EXPECT_EQ(run(*p, id, {"staff"}).status(), 403);
  EXPECT_EQ(run(*p, id).code(), "ambiguous_tenant");
  EXPECT_EQ(run(*p, id, {"acme|globex"}).code(), "invalid_tenant");  // push route: exactly one
  EXPECT_EQ(run(*p, id, {"acme", "globex"}).code(), "invalid_tenant");  // two headers
  EXPECT_EQ(run(*p, id, {"a b"}).status(), 400);
  EXPECT_EQ(run(*p, id, {".."}).status(), 400);

  o.federation = true;
  auto q = make_tenant_resolver(o);
  auto fed = run(*q, id, {"acme|globex"});
  EXPECT_EQ(fed.upstream_tenant(), "acme|globex");
  EXPECT_THAT(fed.ex->tenants, ElementsAre("acme", "globex"));
  EXPECT_EQ(run(*q, id, {"acme|staff"}).code(), "tenant_not_allowed");
  EXPECT_EQ(run(*q, id, {"acme|"}).code(), "invalid_tenant");
  EXPECT_EQ(run(*q, id).upstream_tenant(), "acme|globex");  // no header on a query route: every allowed tenant

  o.federation = false;
  o.require_header = true;
  auto single = identity(R"({"groups":["obs-tenant-acme"]})");
  EXPECT_EQ(run(*make_tenant_resolver(o), single).code(), "tenant_required");
  o.require_header = false;
  EXPECT_EQ(run(*make_tenant_resolver(o), single).upstream_tenant(), "acme");
}

TEST(TenantResolver, StaticBindingsAndApiKeyTenants) {
  TenantResolverOptions o;
  // A user (agent-a) who logged in through a bound client does not inherit the client's tenants.
  o.bindings = {{"client:agent-a-client", {"acme"}}, {"sub:someone-else", {"globex"}}};
  EXPECT_EQ(run(*make_tenant_resolver(o), identity("{}")).code(), "no_tenant");
  auto client = std::make_shared<Identity>(*identity("{}"));
  client->subject = "agent-a-client";  // client credentials: the client is the subject
  client->issuer = "https://a";
  EXPECT_EQ(run(*make_tenant_resolver(o), client).upstream_tenant(), "acme");
  o.bindings = {{"sub:agent-a", {"initech"}}};
  EXPECT_EQ(run(*make_tenant_resolver(o), identity("{}")).upstream_tenant(), "initech");
  // Bindings of one issuer do not apply to the same subject name from another.
  o.bindings = {{"client:agent-a-client", {"acme"}}};
  o.bindings_issuer = "https://b";
  EXPECT_EQ(run(*make_tenant_resolver(o), client).code(), "no_tenant");
  o.bindings_issuer = "https://a";
  EXPECT_EQ(run(*make_tenant_resolver(o), client).upstream_tenant(), "acme");
  o.bindings_issuer.clear();
  o.bindings = {{"agent-a", {"acme"}}};  // unqualified key
  EXPECT_THROW(make_tenant_resolver(o), std::invalid_argument);
  TenantResolverOptions keys;
  auto id = std::make_shared<Identity>();
  id->method = "api_key";
  id->allowed_tenants = {"initech"};
  EXPECT_EQ(run(*make_tenant_resolver(keys), id).upstream_tenant(), "initech");
  o.bindings = {{"sub:x", {"bad id"}}};
  EXPECT_THROW(make_tenant_resolver(o), std::invalid_argument);
}

TEST(TenantResolver, TheSameIdentityResolvesFromTheMemo) {
  TenantResolverOptions o;
  o.claim = "tenant_id";
  auto p = make_tenant_resolver(o);
  auto id = identity(R"({"tenant_id":"acme"})");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(*p, id).upstream_tenant(), "acme");
  // Another identity object at work on the same thread gets its own answer.
  EXPECT_EQ(run(*p, identity(R"({"tenant_id":"globex"})")).upstream_tenant(), "globex");
}

TEST(Authorizer, ScopesGroupsRolesAndClaims) {
  AuthorizationOptions o;
  o.scopes = {"logs:write"};
  auto p = make_authorizer(o);
  EXPECT_EQ(run(*p, identity("{}", {"logs:write", "logs:read"})).code(), "proceed");
  auto refused = run(*p, identity("{}", {"logs:read"}));
  EXPECT_EQ(refused.status(), 403);
  EXPECT_EQ(refused.code(), "insufficient_scope");
  ASSERT_EQ(refused.verdict.rejection().headers.size(), 1u);
  EXPECT_EQ(refused.verdict.rejection().headers[0].value, "Bearer error=\"insufficient_scope\", scope=\"logs:write\"");
  EXPECT_EQ(run(*p, nullptr).status(), 401);

  AuthorizationOptions g;
  g.groups = {"admins", "sre"};
  EXPECT_EQ(run(*make_authorizer(g), identity("{}", {}, {"staff", "sre"})).code(), "proceed");
  EXPECT_EQ(run(*make_authorizer(g), identity("{}", {}, {"staff"})).code(), "forbidden");

  AuthorizationOptions r;
  r.roles = {"writer"};
  r.roles_claim = "realm_access.roles";
  EXPECT_EQ(run(*make_authorizer(r), identity(R"({"realm_access":{"roles":["reader","writer"]}})")).code(), "proceed");
  EXPECT_EQ(run(*make_authorizer(r), identity(R"({"realm_access":{"roles":["reader"]}})")).code(), "forbidden");

  AuthorizationOptions c;
  c.claims = {ClaimRule{"env", {}, {"prod"}}};
  EXPECT_EQ(run(*make_authorizer(c), identity(R"({"env":"prod"})")).code(), "proceed");
  EXPECT_EQ(run(*make_authorizer(c), identity(R"({"env":"dev"})")).code(), "forbidden");
  EXPECT_THROW(make_authorizer(AuthorizationOptions{}), std::invalid_argument);
}

}  // namespace
}  // namespace obsgw

#include <openssl/sha.h>

#include "obsgw/api_key_authenticator.hpp"

namespace obsgw {
namespace {

std::string sha256_hex(std::string_view s) {
  unsigned char d[32];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  std::string out;
  for (unsigned char c : d) out += "0123456789abcdef"[c >> 4], out += "0123456789abcdef"[c & 15];
  return out;
}

TEST(ApiKeys, HashedKeysBoundToIdentitiesAndTenants) {
  ApiKeyAuthenticatorOptions o;
  o.keys = {ApiKey{"edge-eu", sha256_hex("k-eu-0123456789abcdef0123456789"), "", {"acme"}, {"logs:write"}, {}},
            ApiKey{"edge-us", sha256_hex("k-us-0123456789abcdef0123456789"), "svc-us", {"globex"}, {}, {}}};
  auto p = make_api_key_authenticator(o);
  auto with_key = [&](std::string key) {
    RequestHead head;
    head.method = "POST";
    head.path = "/";
    head.headers.add("X-API-Key", key);
    head.headers.add("X-Auth-Request-User", "spoofed");
    Result r;
    r.ex = std::make_unique<Exchange>(std::move(head), ConnectionInfo{});
    r.verdict = p->on_request(*r.ex);
    return r;
  };
  auto eu = with_key("k-eu-0123456789abcdef0123456789");
  ASSERT_EQ(eu.code(), "proceed");
  EXPECT_EQ(eu.ex->identity->subject, "edge-eu");
  EXPECT_THAT(eu.ex->identity->allowed_tenants, ElementsAre("acme"));
  EXPECT_EQ(eu.ex->request().headers.get("X-Auth-Request-User"), "edge-eu");
  EXPECT_FALSE(eu.ex->request().headers.contains("X-API-Key"));
  EXPECT_EQ(with_key("k-us-0123456789abcdef0123456789").ex->identity->subject, "svc-us");
  auto wrong = with_key("k-eu-0123456789abcdef012345678X");
  EXPECT_EQ(wrong.status(), 401);
  EXPECT_EQ(wrong.code(), "unknown_api_key");
  EXPECT_FALSE(wrong.ex->request().headers.contains("X-Auth-Request-User"));
  EXPECT_EQ(with_key("").code(), "unknown_api_key");
  // No key at all: a different reason, and the challenge carries no error (RFC 6750 3.1).
  RequestHead bare;
  bare.method = "POST";
  bare.path = "/";
  bare.headers.add("X-Auth-Request-User", "spoofed");
  Result missing;
  missing.ex = std::make_unique<Exchange>(std::move(bare), ConnectionInfo{});
  missing.verdict = p->on_request(*missing.ex);
  EXPECT_EQ(missing.status(), 401);
  EXPECT_EQ(missing.code(), "missing_api_key");
  EXPECT_FALSE(missing.ex->request().headers.contains("X-Auth-Request-User"));
  ASSERT_FALSE(missing.verdict.rejection().headers.empty());
  EXPECT_EQ(missing.verdict.rejection().headers[0].name, "WWW-Authenticate");
  EXPECT_THAT(missing.verdict.rejection().headers[0].value, ::testing::Not(::testing::HasSubstr("error=")));

  // The tenant resolver takes the key's tenants.
  TenantResolverOptions t;
  EXPECT_EQ(run(*make_tenant_resolver(t), eu.ex->identity, {"globex"}).upstream_tenant(), "acme");

  o.keys.push_back(o.keys[0]);
  EXPECT_THROW(make_api_key_authenticator(o), std::invalid_argument);
  o.keys = {ApiKey{"x", "not-hex", "", {}, {}, {}}};
  EXPECT_THROW(make_api_key_authenticator(o), std::invalid_argument);
}

}  // namespace
}  // namespace obsgw
