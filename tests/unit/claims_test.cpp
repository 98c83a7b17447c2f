#include "auth/claims.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

namespace obsgw::auth {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

const Clock::time_point kNow = Clock::time_point(std::chrono::seconds(1'800'000'000));
constexpr std::int64_t T = 1'800'000'000;

ClaimRules rules() {
  ClaimRules r;
  r.issuer = "http://127.0.0.1:4444";
  r.audiences = {"urn:obsgw"};
  r.typ = "at+jwt";
  r.leeway = 30s;
  return r;
}

std::optional<ClaimFailure> check(const std::string& payload, const ClaimRules& r = rules(),
                                  std::string header = R"({"alg":"RS256","typ":"at+jwt"})") {
  ValidatedClaims out;
  return validate_claims(header, payload, r, kNow, out);
}

std::string payload(std::string extra = "") {
  return fmt::format(R"({{"iss":"http://127.0.0.1:4444","aud":"urn:obsgw","sub":"agent-a","exp":{},"iat":{}{}}})",
                     T + 600, T - 10, extra);
}

TEST(Claims, AcceptsAValidAccessTokenAndReadsIt) {
  ValidatedClaims out;
  auto fail = validate_claims(R"({"alg":"RS256","typ":"AT+JWT"})",
                              payload(R"(,"client_id":"agent-a","scope":"logs:write  metrics:write","tenant_id":"a")"),
                              rules(), kNow, out);
  ASSERT_FALSE(fail) << fail->message;
  EXPECT_EQ(out.subject, "agent-a");
  EXPECT_EQ(out.client_id, "agent-a");
  EXPECT_EQ(out.issuer, "http://127.0.0.1:4444");
  EXPECT_THAT(out.scopes, ::testing::ElementsAre("logs:write", "metrics:write"));
  EXPECT_EQ(out.expires_at, T + 600);
}

TEST(Claims, TimeChecksWithLeeway) {
  auto at = [](std::string claims) {
    return check(fmt::format(R"({{"iss":"http://127.0.0.1:4444","aud":"urn:obsgw"{}}})", claims));
  };
  EXPECT_FALSE(at(fmt::format(R"(,"exp":{})", T - 20)));  // expired 20 s ago, within the 30 s leeway
  EXPECT_EQ(at(fmt::format(R"(,"exp":{})", T - 31))->code, "token_expired");
  EXPECT_EQ(at(fmt::format(R"(,"exp":{},"nbf":{})", T + 600, T + 31))->code, "token_not_yet_valid");
  EXPECT_FALSE(at(fmt::format(R"(,"exp":{},"nbf":{})", T + 600, T + 29)));
  EXPECT_EQ(at(fmt::format(R"(,"exp":{},"iat":{})", T + 600, T + 60))->code, "token_issued_in_future");
  EXPECT_FALSE(at(fmt::format(R"(,"exp":{}.75)", T + 1)));  // fractional NumericDate
  EXPECT_EQ(at("")->code, "missing_claim");                 // no exp
  ClaimRules lax = rules();
  lax.require_exp = false;
  EXPECT_FALSE(check(R"({"iss":"http://127.0.0.1:4444","aud":"urn:obsgw"})", lax));
  EXPECT_EQ(at(R"(,"exp":"tomorrow")")->code, "malformed_token");
  EXPECT_EQ(at(R"(,"exp":1e300)")->code, "malformed_token");
}

TEST(Claims, IssuerMatchesExactly) {
  for (const char* iss : {"http://127.0.0.1:4444/", "HTTP://127.0.0.1:4444", "http://127.0.0.1:4445", ""}) {
    auto f = check(fmt::format(R"({{"iss":"{}","aud":"urn:obsgw","exp":{}}})", iss, T + 60));
    ASSERT_TRUE(f) << iss;
    EXPECT_EQ(f->code, "wrong_issuer");
  }
  EXPECT_EQ(check(fmt::format(R"({{"aud":"urn:obsgw","exp":{}}})", T + 60))->code, "wrong_issuer");
}

TEST(Claims, AudienceAsStringOrArray) {
  auto with_aud = [](std::string aud) {
    return check(fmt::format(R"({{"iss":"http://127.0.0.1:4444","aud":{},"exp":{}}})", aud, T + 60));
  };
  EXPECT_FALSE(with_aud(R"("urn:obsgw")"));
  EXPECT_FALSE(with_aud(R"(["other","urn:obsgw"])"));
  EXPECT_EQ(with_aud(R"(["other"])")->code, "wrong_audience");
  EXPECT_EQ(with_aud(R"("urn:obsgw2")")->code, "wrong_audience");
  EXPECT_EQ(with_aud(R"(null)")->code, "wrong_audience");
}

TEST(Claims, HeaderTypeAndCriticalExtensions) {
  EXPECT_EQ(check(payload(), rules(), R"({"alg":"RS256","typ":"JWT"})")->code, "wrong_token_type");
  EXPECT_EQ(check(payload(), rules(), R"({"alg":"RS256"})")->code, "wrong_token_type");
  EXPECT_EQ(check(payload(), rules(), R"({"alg":"RS256","typ":"at+jwt","crit":["exp"]})")->code, "unsupported_token");
}

TEST(Claims, RequiredClaimsAndMalformedJson) {
  ClaimRules r = rules();
  r.required = {"tenant_id"};
  EXPECT_EQ(check(payload(), r)->code, "missing_claim");
  EXPECT_THAT(check(payload(), r)->message, ::testing::HasSubstr("tenant_id"));
  EXPECT_FALSE(check(payload(R"(,"tenant_id":"acme")"), r));
  EXPECT_EQ(check("[1]")->code, "malformed_token");
  EXPECT_EQ(check("{\"iss\":")->code, "malformed_token");
  EXPECT_EQ(check(payload(), rules(), "\"header\"")->code, "malformed_token");
}

}  // namespace
}  // namespace obsgw::auth
