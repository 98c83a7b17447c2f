// Reading a provider's answer about an opaque token (RFC 7662 introspection, OIDC userinfo): every reason to
// refuse, and what an accepted answer gives the identity.
#include "auth/token_answer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace obsgw::auth {
namespace {

using ::testing::ElementsAre;
using Mode = IntrospectionAuthenticatorOptions::Mode;

constexpr std::int64_t kNow = 1'800'000'000;

struct Read {
  std::shared_ptr<const Identity> identity;
  std::int64_t expires_at = std::numeric_limits<std::int64_t>::max();
  std::string why;
};

Read read(std::string_view body, const IntrospectionAuthenticatorOptions& o) {
  Read r;
  r.identity = read_token_answer(body, o, kNow, r.expires_at, r.why);
  return r;
}

IntrospectionAuthenticatorOptions introspection() {
  IntrospectionAuthenticatorOptions o;
  o.mode = Mode::introspection;
  o.issuer = "https://op.example";
  o.audiences = {"urn:obsgw"};
  return o;
}

TEST(TokenAnswer, AnActiveAccessTokenBecomesTheIdentity) {
  auto r = read(R"({"active":true,"token_type":"Bearer","iss":"https://op.example","aud":["x","urn:obsgw"],
                    "exp":1800000600,"sub":"alice","client_id":"agent","email":"a@example.com",
                    "scope":"logs:write logs:read","groups":["obs-tenant-acme","staff"]})",
                introspection());
  ASSERT_TRUE(r.identity) << r.why;
  EXPECT_EQ(r.identity->method, "introspection");
  EXPECT_EQ(r.identity->subject, "alice");
  EXPECT_EQ(r.identity->client_id, "agent");
  EXPECT_EQ(r.identity->issuer, "https://op.example");
  EXPECT_EQ(r.identity->email, "a@example.com");
  EXPECT_THAT(r.identity->scopes, ElementsAre("logs:write", "logs:read"));
  EXPECT_THAT(r.identity->groups, ElementsAre("obs-tenant-acme", "staff"));
  EXPECT_EQ(r.expires_at, 1'800'000'600);
  // A client-credentials token: no subject, the client is the subject; "DPoP" is an access token too.
  auto cc = read(R"({"active":true,"token_type":"DPoP","iss":"https://op.example","aud":"urn:obsgw","client_id":"agent"})",
                 introspection());
  ASSERT_TRUE(cc.identity) << cc.why;
  EXPECT_EQ(cc.identity->subject, "agent");
  EXPECT_EQ(cc.expires_at, std::numeric_limits<std::int64_t>::max());  // no exp: the cache TTL bounds it
}

TEST(TokenAnswer, FractionalExpIsFlooredSoTheCacheNeverOutlivesTheToken) {
  auto r = read(R"({"active":true,"token_type":"bearer","iss":"https://op.example","aud":"urn:obsgw","exp":1800000010.9})",
                introspection());
  ASSERT_TRUE(r.identity) << r.why;
  EXPECT_EQ(r.expires_at, 1'800'000'010);
  auto bad = read(R"({"active":true,"token_type":"bearer","iss":"https://op.example","aud":"urn:obsgw","exp":"soon"})",
                  introspection());
  EXPECT_FALSE(bad.identity);
  EXPECT_EQ(bad.why, "the provider's answer has an exp that is not a number of seconds");
}

TEST(TokenAnswer, EveryReasonToRefuse) {
  const auto o = introspection();
  auto why = [&](std::string_view body) {
    auto r = read(body, o);
    EXPECT_FALSE(r.identity) << body;
    return r.why;
  };
  const std::string ok_rest = R"("token_type":"bearer","iss":"https://op.example","aud":"urn:obsgw")";
  EXPECT_EQ(why(R"({"active":false})"), "");  // plainly inactive: "the token is not active"
  EXPECT_EQ(why("{" + ok_rest + "}"), "");    // no "active" at all
  EXPECT_EQ(why(R"({"active":"true",)" + ok_rest + "}"), "");  // a string is not true
  EXPECT_EQ(why(R"({"active":true,"exp":1800000000,)" + ok_rest + "}"), "");  // expires now
  EXPECT_EQ(why(R"({"active":true,"token_type":"refresh_token","iss":"https://op.example","aud":"urn:obsgw"})"),
            "the token is not an access token");
  EXPECT_EQ(why(R"({"active":true,"iss":"https://op.example","aud":"urn:obsgw"})"),
            "the token is not an access token (no token_type)");
  EXPECT_EQ(why(R"({"active":true,"token_type":"bearer","iss":"https://other.example","aud":"urn:obsgw"})"),
            "the token was not issued by the expected issuer");
  EXPECT_EQ(why(R"({"active":true,"token_type":"bearer","aud":"urn:obsgw"})"),
            "the token was not issued by the expected issuer");
  EXPECT_EQ(why(R"({"active":true,"token_type":"bearer","iss":"https://op.example","aud":["urn:other"]})"),
            "the token is not meant for this audience");
  EXPECT_EQ(why("[true]"), "the provider's answer is not a JSON object");
  EXPECT_EQ(why("not json"), "the provider's answer is not a JSON object");
  // Without the checks configured, the answer alone decides.
  IntrospectionAuthenticatorOptions lax;
  lax.mode = Mode::introspection;
  lax.require_token_type = false;
  EXPECT_TRUE(read(R"({"active":true,"client_id":"agent"})", lax).identity);
}

TEST(TokenAnswer, UserinfoNeedsASubject) {
  IntrospectionAuthenticatorOptions o;
  o.mode = Mode::userinfo;
  auto r = read(R"({"sub":"bob","email":"b@example.com","groups":"staff"})", o);
  ASSERT_TRUE(r.identity) << r.why;
  EXPECT_EQ(r.identity->method, "userinfo");
  EXPECT_EQ(r.identity->subject, "bob");
  EXPECT_THAT(r.identity->groups, ElementsAre("staff"));
  auto none = read(R"({"email":"b@example.com"})", o);
  EXPECT_FALSE(none.identity);
  EXPECT_EQ(none.why, "the userinfo answer has no subject");
  EXPECT_TRUE(read(R"({"username":"carol"})", o).identity);  // "username" (RFC 7662 style) names the subject too
}

}  // namespace
}  // namespace obsgw::auth
