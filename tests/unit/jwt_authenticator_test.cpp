// The JWT authenticator end to end on local keys: the verifier's attack battery, the policy's 401 challenges,
// token sources, identity headers and the verified-token cache.

#include "obsgw/jwt_authenticator.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/detached.hpp>
#include <fmt/format.h>

#include "auth/jwt_verifier.hpp"
#include "auth/token_cache.hpp"
#include "jwt_test_support.hpp"
#include "server/metrics.hpp"

namespace obsgw {
namespace {

using auth::JwsAlg;
using auth::make_jwt;
using auth::VerifyOutcome;
using ::testing::HasSubstr;
using OnUnknownKid = auth::JwtVerifier::OnUnknownKid;

constexpr const char* kIssuer = "https://idp.example";

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = std::filesystem::temp_directory_path() / fmt::format("obsgw-test-{}-{}", ::getpid(), name);
  std::ofstream(path) << content;
  return path.string();
}

// Keys shared by every test: generating RSA keys is slow.
struct Keys {
  std::shared_ptr<EVP_PKEY> rsa = auth::generate("RSA");
  std::shared_ptr<EVP_PKEY> ec = auth::generate("P-256");
  std::shared_ptr<EVP_PKEY> stranger = auth::generate("RSA");  // published nowhere
  std::string jwks_path = write_temp("jwks.json", "{\"keys\":[" + auth::public_jwk_json(rsa.get(), "rsa-1", "RS256") + "," +
                                                      auth::public_jwk_json(ec.get(), "ec-1", "ES256") + "]}");
  std::string rsa_pem;
  Keys() {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, rsa.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    rsa_pem.assign(data, static_cast<std::size_t>(len));
    BIO_free(bio);
  }
};
const Keys& keys() {
  static Keys k;
  return k;
}

std::string claims(std::string extra = "", std::int64_t exp_offset = 600) {
  return fmt::format(R"({{"iss":"{}","sub":"agent-a","aud":"urn:obsgw","exp":{},"iat":{},"scope":"logs:write logs:read",)"
                     R"("tenant_id":"acme","groups":["obs-tenant-acme","staff"],"email":"a@example.com"{}}})",
                     kIssuer, now_s() + exp_offset, now_s() - 5, extra.empty() ? "" : "," + extra);
}

std::string rs256(std::string_view payload, std::string_view kid = "rsa-1", EVP_PKEY* key = nullptr) {
  return make_jwt(JwsAlg::RS256, key ? key : keys().rsa.get(),
                  fmt::format(R"({{"alg":"RS256","typ":"at+jwt","kid":"{}"}})", kid), payload);
}

std::string hs256(std::string_view secret, std::string_view header, std::string_view payload) {
  std::string input = auth::base64url_encode(header) + "." + auth::base64url_encode(payload);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  return input + "." + auth::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

JwtProviderOptions provider() {
  JwtProviderOptions p;
  p.issuer = kIssuer;
  p.jwks_file = keys().jwks_path;
  p.audiences = {"urn:obsgw"};
  p.token_type = "at+jwt";
  p.leeway = std::chrono::seconds(30);
  return p;
}

VerifyOutcome verify(const std::string& token, JwtProviderOptions p = provider()) {
  auth::JwtVerifier v({p}, 16384);
  return v.verify(token, std::chrono::system_clock::now(), OnUnknownKid::fail);
}

std::string code_of(const std::string& token, JwtProviderOptions p = provider()) {
  auto o = verify(token, std::move(p));
  return o.kind == VerifyOutcome::Kind::verified ? "verified" : o.code;
}

TEST(JwtVerifier, AcceptsAGenuineTokenAndReadsTheIdentity) {
  auto o = verify(rs256(claims()));
  ASSERT_EQ(o.kind, VerifyOutcome::Kind::verified) << o.code << ": " << o.message;
  EXPECT_EQ(o.identity->method, "jwt");
  EXPECT_EQ(o.identity->subject, "agent-a");
  EXPECT_EQ(o.identity->issuer, kIssuer);
  EXPECT_EQ(o.identity->email, "a@example.com");
  EXPECT_THAT(o.identity->scopes, ::testing::ElementsAre("logs:write", "logs:read"));
  EXPECT_THAT(o.identity->groups, ::testing::ElementsAre("obs-tenant-acme", "staff"));
  EXPECT_THAT(o.identity->claims_json, HasSubstr("\"tenant_id\":\"acme\""));
  EXPECT_GT(o.expires_at, now_s());
  // ES256 with the other published key.
  auto es = make_jwt(JwsAlg::ES256, keys().ec.get(), R"({"alg":"ES256","typ":"at+jwt","kid":"ec-1"})", claims());
  EXPECT_EQ(code_of(es), "verified");
}

TEST(JwtVerifier, AttackBattery) {
  const std::string good = rs256(claims());
  auto dot1 = good.find('.'), dot2 = good.rfind('.');
  // alg none, with and without a signature.
  std::string none = auth::base64url_encode(R"({"alg":"none","typ":"at+jwt","kid":"rsa-1"})") + "." +
                     auth::base64url_encode(claims());
  EXPECT_EQ(code_of(none + "."), "malformed_token");  // an empty signature part is not a compact JWS here
  EXPECT_EQ(code_of(none + "." + good.substr(dot2 + 1)), "disallowed_algorithm");
  // HS256 "signed" with the RSA public key as the secret (key confusion).
  EXPECT_EQ(code_of(hs256(keys().rsa_pem, R"({"alg":"HS256","typ":"at+jwt","kid":"rsa-1"})", claims())),
            "disallowed_algorithm");
  // A kid naming the EC key on an RS256 token: the algorithm does not fit that key.
  EXPECT_EQ(code_of(rs256(claims(), "ec-1")), "disallowed_algorithm");
  // Payload changed after signing.
  EXPECT_EQ(code_of(good.substr(0, dot1 + 1) + auth::base64url_encode(claims("\"admin\":true")) + good.substr(dot2)),
            "bad_signature");
  // Signed by a key nobody published, under a published kid; and under an unknown kid.
  EXPECT_EQ(code_of(rs256(claims(), "rsa-1", keys().stranger.get())), "bad_signature");
  EXPECT_EQ(code_of(rs256(claims(), "rsa-9", keys().stranger.get())), "unknown_key");
  // Issuer, audience, type.
  EXPECT_EQ(code_of(rs256(R"({"iss":"https://evil.example","sub":"x","exp":99999999999})")), "unknown_issuer");
  EXPECT_EQ(code_of(rs256(R"({"sub":"x","exp":99999999999})")), "unknown_issuer");
  auto p = provider();
  p.audiences = {"urn:other"};
  EXPECT_EQ(code_of(good, p), "wrong_audience");
  p = provider();
  p.token_type = "JWT";
  EXPECT_EQ(code_of(good, p), "wrong_token_type");
  // Times, beyond the 30 s leeway and within it.
  EXPECT_EQ(code_of(rs256(claims("", -31))), "token_expired");
  EXPECT_EQ(code_of(rs256(claims("", -20))), "verified");
  EXPECT_EQ(code_of(rs256(claims(fmt::format("\"nbf\":{}", now_s() + 120)))), "token_not_yet_valid");
  auto future_iat = fmt::format(R"({{"iss":"{}","sub":"x","aud":"urn:obsgw","exp":{},"iat":{}}})", kIssuer, now_s() + 600,
                                now_s() + 120);
  EXPECT_EQ(code_of(rs256(future_iat)), "token_issued_in_future");
  auto no_exp = fmt::format(R"({{"iss":"{}","sub":"x","aud":"urn:obsgw"}})", kIssuer);
  EXPECT_EQ(code_of(rs256(no_exp)), "missing_claim");
  // Encoding and shape.
  EXPECT_EQ(code_of(good.substr(0, dot2) + ".a+b/"), "malformed_token");
  EXPECT_EQ(code_of(good.substr(0, dot2)), "malformed_token");
  EXPECT_EQ(code_of(good + ".x.y"), "malformed_token");
  EXPECT_EQ(code_of(rs256("[1,2,3]")), "malformed_token");
  EXPECT_EQ(code_of(rs256("\"just a string\"")), "malformed_token");
  EXPECT_EQ(code_of(rs256(claims("\"pad\":\"" + std::string(20000, 'x') + "\""))), "malformed_token");
  EXPECT_EQ(code_of(make_jwt(JwsAlg::RS256, keys().rsa.get(), R"({"alg":"RS256","typ":"at+jwt","kid":7})", claims())),
            "malformed_token");
  EXPECT_EQ(code_of(make_jwt(JwsAlg::RS256, keys().rsa.get(), R"({"alg":"RS256","typ":"application/at+jwt","kid":"rsa-1"})",
                             claims())),
            "verified");
  // Critical extensions the gateway does not implement.
  EXPECT_EQ(code_of(make_jwt(JwsAlg::RS256, keys().rsa.get(), R"({"alg":"RS256","typ":"at+jwt","kid":"rsa-1","crit":["exp"]})",
                             claims())),
            "unsupported_token");
}

TEST(JwtVerifier, ClaimRulesAndAlgorithmAllowList) {
  auto p = provider();
  p.rules = {ClaimRule{"scope", {"logs:write"}, {}}, ClaimRule{"tenant_id", {}, {"acme", "globex"}}};
  EXPECT_EQ(code_of(rs256(claims()), p), "verified");
  p.rules = {ClaimRule{"scope", {"metrics:write"}, {}}};
  auto o = verify(rs256(claims()), p);
  EXPECT_EQ(o.code, "claim_rule_failed");
  EXPECT_THAT(o.message, HasSubstr("metrics:write"));
  p.rules = {ClaimRule{"tenant_id", {}, {"globex"}}};
  EXPECT_EQ(code_of(rs256(claims()), p), "claim_rule_failed");
  p = provider();
  p.required_claims = {"client_id"};
  EXPECT_EQ(code_of(rs256(claims()), p), "missing_claim");
  p = provider();
  p.algorithms = {"ES256"};
  EXPECT_EQ(code_of(rs256(claims()), p), "disallowed_algorithm");
}

TEST(JwtVerifier, HmacOnlyWithAConfiguredSecret) {
  const std::string secret(40, 's');
  JwtProviderOptions p;
  p.issuer = kIssuer;
  p.any_audience = true;
  p.hmac_secret = secret;
  const std::string header = R"({"alg":"HS256","typ":"JWT"})";
  EXPECT_EQ(code_of(hs256(secret, header, claims()), p), "verified");
  EXPECT_EQ(code_of(hs256(std::string(40, 't'), header, claims()), p), "bad_signature");
  EXPECT_EQ(code_of(rs256(claims()), p), "disallowed_algorithm");  // no public keys for this issuer
  // RFC 7518 3.2: HS384 needs a 48-byte key at least.
  EXPECT_EQ(code_of(hs256(secret, R"({"alg":"HS384","typ":"JWT"})", claims()), p), "disallowed_algorithm");
  p.hmac_secret = "short";
  EXPECT_THROW(verify("x", p), std::invalid_argument);
  p.hmac_secret = secret;
  p.any_audience = false;  // neither audiences nor the explicit opt-out
  EXPECT_THROW(verify("x", p), std::invalid_argument);
}

// Several issuers on one verifier: each token is judged by its own issuer's keys and rules only.
TEST(JwtVerifier, SeveralIssuersKeepTheirKeysAndRulesApart) {
  constexpr const char* kHmacIssuer = "https://hmac.example";
  constexpr const char* kPemIssuer = "https://pem.example";
  const std::string secret(40, 'k');
  JwtProviderOptions hmac;  // a shared secret, its own audience
  hmac.issuer = kHmacIssuer;
  hmac.audiences = {"urn:other"};
  hmac.hmac_secret = secret;
  JwtProviderOptions pem;  // the key published nowhere else, as a PEM file
  pem.issuer = kPemIssuer;
  pem.audiences = {"urn:obsgw"};
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, keys().stranger.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string pem_path = write_temp("stranger.pem", std::string(data, static_cast<std::size_t>(len)));
  BIO_free(bio);
  pem.public_key_files = {pem_path};
  const std::string pem_kid = std::filesystem::path(pem_path).stem().string();
  auth::JwtVerifier v({provider(), hmac, pem}, 16384);
  auto code = [&](const std::string& token) {
    auto o = v.verify(token, std::chrono::system_clock::now(), OnUnknownKid::fail);
    return o.kind == VerifyOutcome::Kind::verified ? "verified:" + o.identity->issuer : o.code;
  };
  auto for_issuer = [](std::string_view iss, std::string_view aud) {
    return fmt::format(R"({{"iss":"{}","sub":"agent-a","aud":"{}","exp":{},"iat":{}}})", iss, aud, now_s() + 600, now_s() - 5);
  };
  const std::string hs_header = R"({"alg":"HS256","typ":"JWT"})";
  auto rs = [](std::string_view payload, std::string_view kid, EVP_PKEY* key, std::string_view typ = "JWT") {
    return make_jwt(JwsAlg::RS256, key, fmt::format(R"({{"alg":"RS256","typ":"{}","kid":"{}"}})", typ, kid), payload);
  };

  // Each issuer's own tokens pass, and the identity names the issuer.
  EXPECT_EQ(code(rs256(claims())), std::string("verified:") + kIssuer);
  EXPECT_EQ(code(hs256(secret, hs_header, for_issuer(kHmacIssuer, "urn:other"))), std::string("verified:") + kHmacIssuer);
  EXPECT_EQ(code(rs(for_issuer(kPemIssuer, "urn:obsgw"), pem_kid, keys().stranger.get())), std::string("verified:") + kPemIssuer);
  // A key of one issuer never vouches for another: the JWKS issuer's RSA key under the secret-only issuer...
  EXPECT_EQ(code(rs(for_issuer(kHmacIssuer, "urn:other"), "rsa-1", keys().rsa.get())), "disallowed_algorithm");
  // ...the secret under the JWKS issuer (alg confusion across providers)...
  EXPECT_EQ(code(hs256(secret, hs_header, for_issuer(kIssuer, "urn:obsgw"))), "disallowed_algorithm");
  // ...the JWKS issuer's kid and key under the PEM issuer, and the PEM key under the JWKS issuer.
  EXPECT_EQ(code(rs(for_issuer(kPemIssuer, "urn:obsgw"), "rsa-1", keys().rsa.get())), "unknown_key");
  EXPECT_EQ(code(rs(claims(), pem_kid, keys().stranger.get(), "at+jwt")), "unknown_key");
  // Another issuer's rules do not apply: the secret issuer's audience is not the JWKS issuer's, and the JWKS
  // issuer's typ rule (at+jwt) is its own.
  EXPECT_EQ(code(rs256(for_issuer(kIssuer, "urn:other"))), "wrong_audience");
  EXPECT_EQ(code(rs(for_issuer(kIssuer, "urn:obsgw"), "rsa-1", keys().rsa.get(), "JWT")), "wrong_token_type");
  EXPECT_EQ(code(hs256(secret, hs_header, for_issuer(kHmacIssuer, "urn:obsgw"))), "wrong_audience");
  EXPECT_EQ(code(hs256(secret, hs_header, for_issuer("https://unknown.example", "urn:obsgw"))), "unknown_issuer");
  std::filesystem::remove(pem_path);
}

TEST(JwtVerifier, PemPublicKeyFilesAndConfigProblems) {
  auto pem = write_temp("rsa-pem.pem", keys().rsa_pem);
  JwtProviderOptions p;
  p.issuer = kIssuer;
  p.audiences = {"urn:obsgw"};
  p.public_key_files = {pem};
  auto kid = std::filesystem::path(pem).stem().string();
  EXPECT_EQ(code_of(rs256(claims(), kid), p), "verified");
  p.jwks_file = keys().jwks_path;  // two key sources
  EXPECT_THROW(verify("x", p), std::invalid_argument);
  JwtProviderOptions bad;
  bad.issuer = kIssuer;
  bad.audiences = {"urn:obsgw"};
  bad.jwks_uri = "http://idp.example/jwks";  // plain http without allow_http
  EXPECT_THROW(verify("x", bad), std::invalid_argument);
}

// --- The policy ---

struct Call {
  Verdict verdict = Verdict::proceed();
  Exchange ex;
};

RequestHead request_with(std::initializer_list<std::pair<std::string, std::string>> headers, std::string query = "") {
  RequestHead r;
  r.method = "POST";
  r.path = "/loki/api/v1/push";
  r.query = std::move(query);
  for (const auto& [n, v] : headers) r.headers.add(n, v);
  return r;
}

std::unique_ptr<Call> run(const Policy& policy, RequestHead head) {
  auto call = std::make_unique<Call>(Call{Verdict::proceed(), Exchange(std::move(head), ConnectionInfo{})});
  call->verdict = policy.on_request(call->ex);
  return call;
}

std::string header_of(const Verdict& v, std::string_view name) {
  std::string all;
  for (const auto& h : v.rejection().headers)
    if (iequals(h.name, name)) all += (all.empty() ? "" : " | ") + h.value;
  return all;
}

JwtAuthenticatorOptions policy_options() {
  JwtAuthenticatorOptions o;
  o.providers = {provider()};
  return o;
}

TEST(JwtAuthenticator, ChallengesFollowRfc6750) {
  auto policy = make_jwt_authenticator(policy_options());
  auto missing = run(*policy, request_with({}));
  ASSERT_TRUE(missing->verdict.rejects());
  EXPECT_EQ(missing->verdict.rejection().status, 401);
  EXPECT_EQ(missing->verdict.rejection().code, "missing_token");
  EXPECT_EQ(header_of(missing->verdict, "WWW-Authenticate"), "Bearer realm=\"obsgw\"");

  auto expired = run(*policy, request_with({{"Authorization", "Bearer " + rs256(claims("", -3600))}}));
  ASSERT_TRUE(expired->verdict.rejects());
  EXPECT_EQ(expired->verdict.rejection().code, "token_expired");
  EXPECT_EQ(header_of(expired->verdict, "WWW-Authenticate"),
            "Bearer realm=\"obsgw\", error=\"invalid_token\", error_description=\"the token has expired\"");

  auto empty = run(*policy, request_with({{"Authorization", "Bearer "}}));
  EXPECT_EQ(empty->verdict.rejection().code, "malformed_credentials");
  auto twice = run(*policy, request_with({{"Authorization", "Bearer " + rs256(claims())}, {"Authorization", "Bearer x"}}));
  EXPECT_EQ(twice->verdict.rejection().code, "malformed_credentials");
  auto other_scheme = run(*policy, request_with({{"Authorization", "Basic YTpi"}}));
  EXPECT_EQ(other_scheme->verdict.rejection().code, "missing_token");
}

// A provider whose keys were never fetched (nothing listens at its JWKS address): the request waits through the
// asynchronous step for cold_start_wait, then gets 503 identity_provider_unavailable, without saying why to the
// client (the log does).
TEST(JwtAuthenticator, ColdStartWaitsThen503) {
  JwtProviderOptions p = provider();
  p.jwks_file.clear();
  p.jwks_uri = "http://127.0.0.1:1/jwks.json";  // port 1: refused at once
  p.allow_http = true;
  p.cold_start_wait = std::chrono::milliseconds(300);
  p.fetch_timeout = std::chrono::milliseconds(200);
  JwtAuthenticatorOptions o;
  o.providers = {p};
  auto policy = make_jwt_authenticator(o);
  auto call = run(*policy, request_with({{"Authorization", "Bearer " + rs256(claims())}}));
  ASSERT_TRUE(call->verdict.suspends());
  asio::io_context io;
  const auto start = std::chrono::steady_clock::now();
  std::optional<Verdict> out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out.emplace(co_await policy->on_request_async(call->ex)); },
                 asio::detached);
  io.run();
  ASSERT_TRUE(out);
  const Verdict& v = *out;
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(v.rejects());
  EXPECT_EQ(v.rejection().status, 503);
  EXPECT_EQ(v.rejection().code, "identity_provider_unavailable");
  EXPECT_EQ(header_of(v, "Retry-After"), "5");
  EXPECT_THAT(v.rejection().message, ::testing::Not(HasSubstr("127.0.0.1")));
  EXPECT_GE(waited, std::chrono::milliseconds(290));
  EXPECT_LT(waited, std::chrono::seconds(5));
}

TEST(JwtAuthenticator, SetsIdentityHeadersStripsSpoofedOnesAndTheCredential) {
  auto policy = make_jwt_authenticator(policy_options());
  auto ok = run(*policy, request_with({{"Authorization", "bearer " + rs256(claims())},
                                       {"X-Auth-Request-User", "admin"},
                                       {"X-Auth-Request-Groups", "admins"}}));
  ASSERT_TRUE(ok->verdict.proceeds()) << ok->verdict.rejection().code;
  const auto& h = ok->ex.request().headers;
  EXPECT_EQ(h.get("X-Auth-Request-User"), "agent-a");
  EXPECT_EQ(h.count("X-Auth-Request-User"), 1u);
  EXPECT_EQ(h.get("X-Auth-Request-Groups"), "obs-tenant-acme,staff");
  EXPECT_EQ(h.get("X-Auth-Request-Email"), "a@example.com");
  EXPECT_FALSE(h.contains("Authorization"));
  ASSERT_TRUE(ok->ex.identity);
  EXPECT_EQ(ok->ex.identity->subject, "agent-a");

  // A refused request still loses the spoofed headers.
  auto refused = run(*policy, request_with({{"X-Auth-Request-User", "admin"}}));
  EXPECT_FALSE(refused->ex.request().headers.contains("X-Auth-Request-User"));

  auto o = policy_options();
  o.forward_token = true;
  auto keep = run(*make_jwt_authenticator(o), request_with({{"Authorization", "Bearer " + rs256(claims())}}));
  EXPECT_TRUE(keep->ex.request().headers.contains("Authorization"));
}

TEST(JwtAuthenticator, TokenSources) {
  const std::string tok = rs256(claims());
  auto o = policy_options();
  o.sources = {*TokenSource::parse("header:X-Token"), *TokenSource::parse("cookie:session"),
               *TokenSource::parse("query:access_token"), *TokenSource::parse("basic")};
  auto policy = make_jwt_authenticator(o);

  auto header = run(*policy, request_with({{"X-Token", tok}}));
  EXPECT_TRUE(header->verdict.proceeds());
  EXPECT_FALSE(header->ex.request().headers.contains("X-Token"));

  auto cookie = run(*policy, request_with({{"Cookie", "theme=dark; session=" + tok + "; lang=en"}}));
  EXPECT_TRUE(cookie->verdict.proceeds());
  EXPECT_EQ(cookie->ex.request().headers.get("Cookie"), "theme=dark; lang=en");

  auto query = run(*policy, request_with({}, "limit=5&access_token=" + tok + "&q=x"));
  EXPECT_TRUE(query->verdict.proceeds());
  EXPECT_EQ(query->ex.request().query, "limit=5&q=x");

  std::string basic_raw = "promtail:" + tok, basic;
  basic.resize(4 * ((basic_raw.size() + 2) / 3) + 1);
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(basic.data()), reinterpret_cast<const unsigned char*>(basic_raw.data()),
                          static_cast<int>(basic_raw.size()));
  basic.resize(static_cast<std::size_t>(n));
  auto viabasic = run(*policy, request_with({{"Authorization", "Basic " + basic}}));
  EXPECT_TRUE(viabasic->verdict.proceeds());
  auto missing = run(*policy, request_with({}));
  EXPECT_EQ(header_of(missing->verdict, "WWW-Authenticate"),
            "Bearer realm=\"obsgw\" | Basic realm=\"obsgw\", charset=\"UTF-8\"");

  // A bearer-only route does not take the basic credential.
  auto bearer_only = make_jwt_authenticator(policy_options());
  EXPECT_EQ(run(*bearer_only, request_with({{"Authorization", "Basic " + basic}}))->verdict.rejection().code,
            "missing_token");
  EXPECT_FALSE(TokenSource::parse("header"));
  EXPECT_FALSE(TokenSource::parse("bearer:x"));
  EXPECT_FALSE(TokenSource::parse("form:x"));
}

TEST(JwtAuthenticator, CachedTokensSkipVerificationUntilTheyExpire) {
  auto policy = make_jwt_authenticator(policy_options());
  auto& m = detail::Metrics::instance().auth();
  const std::string tok = rs256(claims("", 2));  // expires in 2 s
  auto verified0 = m.jwt_verified.load(), hits0 = m.jwt_cache_hits.load();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(run(*policy, request_with({{"Authorization", "Bearer " + tok}}))->verdict.proceeds());
  EXPECT_EQ(m.jwt_verified.load() - verified0, 1u);
  EXPECT_EQ(m.jwt_cache_hits.load() - hits0, 4u);
  // Same identity object each time: no copy per request.
  auto a = run(*policy, request_with({{"Authorization", "Bearer " + tok}}));
  auto b = run(*policy, request_with({{"Authorization", "Bearer " + tok}}));
  EXPECT_EQ(a->ex.identity.get(), b->ex.identity.get());
  // A tampered variant of a cached token is not a hit.
  std::string tampered = tok;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  EXPECT_TRUE(run(*policy, request_with({{"Authorization", "Bearer " + tampered}}))->verdict.rejects());
}

TEST(JwtAuthenticator, CachedTokenIsRefusedOnceItExpires) {
  JwtAuthenticatorOptions o = policy_options();
  o.providers[0].leeway = std::chrono::seconds(0);
  auto policy = make_jwt_authenticator(o);
  auto& m = detail::Metrics::instance().auth();
  const std::int64_t exp = now_s() + 2;  // valid for at least one whole second: room for two verifications
  const std::string tok = rs256(fmt::format(R"({{"iss":"{}","sub":"agent-a","aud":"urn:obsgw","exp":{},"iat":{}}})",
                                            kIssuer, exp, now_s() - 5));
  ASSERT_TRUE(run(*policy, request_with({{"Authorization", "Bearer " + tok}}))->verdict.proceeds());
  auto hits0 = m.jwt_cache_hits.load();
  ASSERT_TRUE(run(*policy, request_with({{"Authorization", "Bearer " + tok}}))->verdict.proceeds());
  EXPECT_EQ(m.jwt_cache_hits.load() - hits0, 1u);  // served from the cache while valid
  while (now_s() <= exp) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto late = run(*policy, request_with({{"Authorization", "Bearer " + tok}}));
  ASSERT_TRUE(late->verdict.rejects());
  EXPECT_EQ(late->verdict.rejection().code, "token_expired");
}

TEST(TokenCache, BoundedAndExpiring) {
  auth::TokenCache cache(16);
  auto id = std::make_shared<Identity>();
  for (int i = 0; i < 100; ++i) cache.insert(std::to_string(i), {id, 1000, 0, 0}, 10);
  EXPECT_LE(cache.size(), 16u);
  cache.insert("x", {id, 1000, 0, 0}, 10);
  cache.insert("x", {id, 1000, 0, 0}, 10);  // a full cache admits a token on its second verification
  EXPECT_NE(cache.find("x", 999), nullptr);
  EXPECT_EQ(cache.find("y", 999), nullptr);
  EXPECT_EQ(cache.find("x", 1001), nullptr);
  EXPECT_EQ(cache.find("x", 999), nullptr);  // removed when found expired
  cache.insert(std::string(5000, 't'), {id, 1000, 0, 0}, 10);  // too long to keep
  EXPECT_EQ(cache.find(std::string(5000, 't'), 999), nullptr);
}

// Tokens that share the sampled head and tail (and length) are still told apart: the whole token is compared.
TEST(TokenCache, SampledHashStillComparesWholeTokens) {
  std::string head(16, 'h'), tail(48, 't');
  std::string t1 = head + std::string(600, 'x') + tail, t2 = head + std::string(600, 'y') + tail;
  for (auto hashing : {auth::TokenCache::Hashing::sampled, auth::TokenCache::Hashing::whole}) {
    auth::TokenCache cache(100, hashing);
    auto a = std::make_shared<Identity>(), b = std::make_shared<Identity>();
    cache.insert(t1, {a, 1000, 0, 0}, 10);
    EXPECT_EQ(cache.find(t2, 10), nullptr);
    cache.insert(t2, {b, 1000, 0, 0}, 10);
    const auto* e1 = cache.find(t1, 10);
    const auto* e2 = cache.find(t2, 10);
    ASSERT_NE(e1, nullptr);
    ASSERT_NE(e2, nullptr);
    EXPECT_EQ(e1->identity, a);
    EXPECT_EQ(e2->identity, b);
    EXPECT_EQ(cache.size(), 2u);
    cache.insert(t1, {b, 2000, 0, 0}, 10);  // replaces, does not add
    EXPECT_EQ(cache.size(), 2u);
    const auto* replaced = cache.find(t1, 1500);
    ASSERT_NE(replaced, nullptr);
    EXPECT_EQ(replaced->identity, b);
  }
  // Which bytes each mode reads: the sample (and the length) only, or every byte.
  auth::TokenCache sampled(1, auth::TokenCache::Hashing::sampled), whole(1, auth::TokenCache::Hashing::whole);
  EXPECT_EQ(sampled.hash(t1), sampled.hash(t2));
  EXPECT_NE(sampled.hash(t1), sampled.hash(head + std::string(601, 'x') + tail));
  EXPECT_NE(sampled.hash(t1), sampled.hash(head + std::string(600, 'x') + std::string(48, 'T')));
  EXPECT_NE(whole.hash(t1), whole.hash(t2));
  EXPECT_NE(sampled.hash("short"), sampled.hash("shorT"));  // short tokens are hashed whole in either mode
}

// A full cache of live entries admits a newcomer only on its second try (doorkeeper), so one-shot tokens do
// not push out the tokens of steady clients; an expired entry makes room at once.
TEST(TokenCache, FullCacheAdmitsTokensSeenBefore) {
  auth::TokenCache cache(64);
  auto id = std::make_shared<Identity>();
  auto token = [](int i) { return "steady-" + std::to_string(i) + std::string(100, 's'); };
  for (int i = 0; i < 64; ++i) cache.insert(token(i), {id, 1000, 0, 0}, 10);
  ASSERT_EQ(cache.size(), 64u);
  int admitted_first_time = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string once = "one-shot-" + std::to_string(i) + std::string(100, 'o');
    cache.insert(once, {id, 1000, 0, 0}, 10);
    if (cache.find(once, 10)) ++admitted_first_time;
  }
  // False positives only: 1,000 marks set about 3% of the filter's bits, so about 0.1% of newcomers.
  EXPECT_LE(admitted_first_time, 10);
  int steady_left = 0;
  for (int i = 0; i < 64; ++i) steady_left += cache.find(token(i), 10) != nullptr;
  EXPECT_GE(steady_left, 64 - admitted_first_time);
  EXPECT_EQ(cache.size(), 64u);

  std::string again = "comes-back" + std::string(100, 'c');
  cache.insert(again, {id, 1000, 0, 0}, 10);
  cache.insert(again, {id, 1000, 0, 0}, 10);  // the second verification of the same token gets in
  EXPECT_NE(cache.find(again, 10), nullptr);
  EXPECT_EQ(cache.size(), 64u);

  // Once the entries have expired, newcomers take their places without proving themselves (nearly always: a
  // newcomer looks at two entries only, which may be other newcomers by then).
  int admitted_after_expiry = 0;
  for (int i = 0; i < 20; ++i) {
    std::string fresh = "fresh-" + std::to_string(i) + std::string(100, 'f');
    cache.insert(fresh, {id, 5000, 0, 0}, 2000);
    admitted_after_expiry += cache.find(fresh, 2000) != nullptr;
  }
  EXPECT_GE(admitted_after_expiry, 16);
  EXPECT_LE(cache.size(), 64u);
}

// The doorkeeper forgets: after 8,192 further tokens turned away it is cleared, and a token turned away before
// that has to prove itself again.
TEST(TokenCache, DoorkeeperIsClearedAfterManyMarks) {
  auth::TokenCache cache(8);
  auto id = std::make_shared<Identity>();
  for (int i = 0; i < 8; ++i) cache.insert("steady-" + std::to_string(i) + std::string(80, 's'), {id, 1000, 0, 0}, 10);
  auto early = [](int i) { return "early-" + std::to_string(i) + std::string(80, 'e'); };
  for (int i = 0; i < 5; ++i) cache.insert(early(i), {id, 1000, 0, 0}, 10);  // turned away, remembered
  for (int i = 0; i < 9000; ++i) cache.insert("filler-" + std::to_string(i) + std::string(80, 'f'), {id, 1000, 0, 0}, 10);
  int forgotten = 0;
  for (int i = 0; i < 5; ++i) {
    cache.insert(early(i), {id, 1000, 0, 0}, 10);
    forgotten += cache.find(early(i), 10) == nullptr;
  }
  EXPECT_GE(forgotten, 4);  // one may slip through as a false positive of the freshly cleared filter
}

}  // namespace
}  // namespace obsgw

namespace obsgw {
namespace {

TEST(ClaimRules, OnlyScopeIsSplitIntoWords) {
  auto holds = [](std::string json, ClaimRule rule) {
    simdjson::dom::parser parser;
    std::string why;
    return auth::claim_rule_holds(parser.parse(json).value(), rule, why);
  };
  EXPECT_TRUE(holds(R"({"scope":"openid logs:read"})", ClaimRule{"scope", {"logs:read"}, {}}));
  EXPECT_TRUE(holds(R"({"scope":"openid logs:read"})", ClaimRule{"scope", {}, {"logs:read"}}));
  // A group with a space in its name is one group, whatever the number of groups.
  EXPECT_FALSE(holds(R"({"groups":["/Platform Admins"]})", ClaimRule{"groups", {"Admins"}, {}}));
  EXPECT_TRUE(holds(R"({"groups":["/Platform Admins"]})", ClaimRule{"groups", {"/Platform Admins"}, {}}));
  EXPECT_FALSE(holds(R"({"name":"John Smith"})", ClaimRule{"name", {}, {"John"}}));
}

TEST(TokenSources, RefuseTokensThatAreNotVisibleAscii) {
  RequestHead r;
  r.method = "GET";
  r.path = "/";
  // "x:tok\r\nX-Injected: 1" in basic credentials.
  r.headers.add("Authorization", "Basic eDp0b2sNClgtSW5qZWN0ZWQ6IDE=");
  std::vector<TokenSource> basic{*TokenSource::parse("basic")};
  auto found = find_token(r, basic);
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->value().empty());
  RequestHead q;
  q.query = "access_token=a%0D%0Ab";
  std::vector<TokenSource> query{*TokenSource::parse("query:access_token")};
  found = find_token(q, query);
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->value().empty());
}

}  // namespace
}  // namespace obsgw
