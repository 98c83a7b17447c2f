// JWT authentication costs: signature verification per algorithm (a new token: what a cache miss costs, keys
// already imported as they are once per key-set fetch), the whole authenticator on a cached token (hash +
// lookup + identity headers), and the pieces of that hit path. Compare the verify rows with
// `openssl speed -seconds 3 rsa2048 ecdsap256 ed25519` on the same machine (verify/s on one core).

#include <benchmark/benchmark.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <unistd.h>

#include "auth/base64url.hpp"
#include "auth/jwk.hpp"
#include "auth/jws.hpp"
#include "auth/jwt_verifier.hpp"
#include "auth/token_cache.hpp"
#include "jwt_test_support.hpp"
#include "obsgw/jwt_authenticator.hpp"
#include "obsgw/tenant_resolver.hpp"

namespace {

using obsgw::auth::JwsAlg;

// Keys and signatures as an issuer makes them: the unit tests' support header (tests/unit/jwt_test_support.hpp).
std::shared_ptr<EVP_PKEY> generate(JwsAlg alg) {
  switch (alg) {
    case JwsAlg::ES256: return obsgw::auth::generate("P-256");
    case JwsAlg::ES384: return obsgw::auth::generate("P-384");
    case JwsAlg::EdDSA: return obsgw::auth::generate("Ed25519");
    default: return obsgw::auth::generate("RSA");
  }
}

using obsgw::auth::sign;

constexpr const char* kIssuer = "https://idp.example";

// A realistic access token (RFC 9068 shape, about 700 bytes for RS256).
std::string payload(int serial) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return fmt::format(R"({{"iss":"{}","sub":"agent-{}","aud":"urn:obsgw","exp":{},"iat":{},"jti":"{:016x}",)"
                     R"("client_id":"agent-{}","scope":"logs:write metrics:write traces:write","tenant_id":"tenant-{}"}})",
                     kIssuer, serial, now + 3600, now - 1, serial * 7919, serial, serial % 16);
}

struct Setup {
  std::shared_ptr<EVP_PKEY> key;
  std::string jwks_path;
  std::vector<std::string> tokens;
  std::unique_ptr<obsgw::auth::JwtVerifier> verifier;
};

Setup& setup(JwsAlg alg) {
  static std::map<JwsAlg, Setup> all;
  auto [it, fresh] = all.try_emplace(alg);
  Setup& s = it->second;
  if (!fresh) return s;
  s.key = generate(alg);
  const char* name = obsgw::auth::to_string(alg);
  s.jwks_path = (std::filesystem::temp_directory_path() / fmt::format("obsgw-bench-{}-{}.json", ::getpid(), name)).string();
  std::ofstream(s.jwks_path) << "{\"keys\":[" << obsgw::auth::public_jwk_json(s.key.get(), "k1", name) << "]}";
  for (int i = 0; i < 64; ++i) {
    std::string input = obsgw::auth::base64url_encode(fmt::format(R"({{"alg":"{}","typ":"at+jwt","kid":"k1"}})", name)) +
                        "." + obsgw::auth::base64url_encode(payload(i));
    s.tokens.push_back(input + "." + obsgw::auth::base64url_encode(sign(alg, s.key.get(), input)));
  }
  obsgw::JwtProviderOptions p;
  p.issuer = kIssuer;
  p.jwks_file = s.jwks_path;
  p.audiences = {"urn:obsgw"};
  p.token_type = "at+jwt";
  s.verifier = std::make_unique<obsgw::auth::JwtVerifier>(std::vector<obsgw::JwtProviderOptions>{p}, 16384);
  std::filesystem::remove(s.jwks_path);
  return s;
}

// Full verification of a token not seen before: split, base64url, JSON, signature, claims, identity.
void BM_VerifyNewToken(benchmark::State& state, JwsAlg alg) {
  Setup& s = setup(alg);
  std::size_t i = 0;
  for (auto _ : state) {
    auto outcome = s.verifier->verify(s.tokens[i++ % s.tokens.size()], std::chrono::system_clock::now(),
                                      obsgw::auth::JwtVerifier::OnUnknownKid::fail);
    if (outcome.kind != obsgw::auth::VerifyOutcome::Kind::verified) state.SkipWithError(outcome.code.c_str());
    benchmark::DoNotOptimize(outcome);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_VerifyNewToken, RS256, JwsAlg::RS256);
BENCHMARK_CAPTURE(BM_VerifyNewToken, RS384, JwsAlg::RS384);
BENCHMARK_CAPTURE(BM_VerifyNewToken, RS512, JwsAlg::RS512);
BENCHMARK_CAPTURE(BM_VerifyNewToken, PS256, JwsAlg::PS256);
BENCHMARK_CAPTURE(BM_VerifyNewToken, PS384, JwsAlg::PS384);
BENCHMARK_CAPTURE(BM_VerifyNewToken, PS512, JwsAlg::PS512);
BENCHMARK_CAPTURE(BM_VerifyNewToken, ES256, JwsAlg::ES256);
BENCHMARK_CAPTURE(BM_VerifyNewToken, ES384, JwsAlg::ES384);
BENCHMARK_CAPTURE(BM_VerifyNewToken, EdDSA, JwsAlg::EdDSA);

// HS256: a provider configured with a shared secret (no key set).
void BM_VerifyNewTokenHS256(benchmark::State& state) {
  const std::string secret(48, 'k');
  std::vector<std::string> tokens;
  for (int i = 0; i < 64; ++i) {
    std::string input = obsgw::auth::base64url_encode(R"({"alg":"HS256","typ":"at+jwt"})") + "." +
                        obsgw::auth::base64url_encode(payload(i));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
         input.size(), mac, &len);
    tokens.push_back(input + "." + obsgw::auth::base64url_encode(std::string_view(reinterpret_cast<const char*>(mac), len)));
  }
  obsgw::JwtProviderOptions p;
  p.issuer = kIssuer;
  p.hmac_secret = secret;
  p.audiences = {"urn:obsgw"};
  p.token_type = "at+jwt";
  obsgw::auth::JwtVerifier verifier({p}, 16384);
  std::size_t i = 0;
  for (auto _ : state) {
    auto outcome = verifier.verify(tokens[i++ % tokens.size()], std::chrono::system_clock::now(),
                                   obsgw::auth::JwtVerifier::OnUnknownKid::fail);
    if (outcome.kind != obsgw::auth::VerifyOutcome::Kind::verified) state.SkipWithError(outcome.code.c_str());
    benchmark::DoNotOptimize(outcome);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyNewTokenHS256);

obsgw::RequestHead request_with(const std::string& token) {
  obsgw::RequestHead r;
  r.method = "POST";
  r.path = "/loki/api/v1/push";
  r.headers.add("Host", "gw");
  r.headers.add("User-Agent", "promtail/2.9");
  r.headers.add("Content-Type", "application/x-protobuf");
  r.headers.add("Authorization", "Bearer " + token);
  r.headers.add("X-Scope-OrgID", "spoofed");
  return r;
}

// The authenticator (and then the tenant resolver) on a token it has seen: what every request of a busy
// agent costs. Includes building the Exchange, as the server does per request.
void BM_AuthenticatorCachedToken(benchmark::State& state, bool with_tenant) {
  Setup& s = setup(JwsAlg::RS256);
  obsgw::JwtAuthenticatorOptions o;
  obsgw::JwtProviderOptions p;
  p.issuer = kIssuer;
  p.jwks_file = s.jwks_path;
  p.audiences = {"urn:obsgw"};
  std::ofstream(s.jwks_path) << "{\"keys\":[" << obsgw::auth::public_jwk_json(s.key.get(), "k1", "RS256") << "]}";
  o.providers = {p};
  auto policy = obsgw::make_jwt_authenticator(o);
  std::filesystem::remove(s.jwks_path);  // read when the authenticator was made
  obsgw::TenantResolverOptions t;
  t.claim = "tenant_id";
  auto tenant = obsgw::make_tenant_resolver(t);
  const obsgw::RequestHead head = request_with(s.tokens[0]);
  for (auto _ : state) {
    obsgw::Exchange ex(head, obsgw::ConnectionInfo{{}, 0, 0, false, "127.0.0.1"});
    auto v = policy->on_request(ex);
    if (with_tenant && v.proceeds()) v = tenant->on_request(ex);
    if (!v.proceeds()) state.SkipWithError("refused");
    benchmark::DoNotOptimize(ex);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_AuthenticatorCachedToken, jwt_only, false);
BENCHMARK_CAPTURE(BM_AuthenticatorCachedToken, jwt_and_tenant, true);

// Baseline for the above: the Exchange copy alone.
void BM_ExchangeOnly(benchmark::State& state) {
  const obsgw::RequestHead head = request_with(setup(JwsAlg::RS256).tokens[0]);
  for (auto _ : state) {
    obsgw::Exchange ex(head, obsgw::ConnectionInfo{{}, 0, 0, false, "127.0.0.1"});
    benchmark::DoNotOptimize(ex);
  }
}
BENCHMARK(BM_ExchangeOnly);

// What keying the cache by a SHA-256 of the token would cost per request (why it is keyed by the token).
void BM_TokenSha256(benchmark::State& state) {
  const std::string& token = setup(JwsAlg::RS256).tokens[0];
  for (auto _ : state) benchmark::DoNotOptimize(obsgw::auth::digest_token(token));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * token.size()));
}
BENCHMARK(BM_TokenSha256);

void BM_TokenCacheLookup(benchmark::State& state) {
  obsgw::auth::TokenCache cache(10000);
  auto id = std::make_shared<obsgw::Identity>();
  // 10,000 cached tokens of realistic size; look them up in a scattered order.
  std::vector<std::string> tokens;
  const std::string& base = setup(JwsAlg::RS256).tokens[0];
  for (int i = 0; i < 10000; ++i) {
    tokens.push_back(base + std::to_string(i));
    cache.insert(tokens.back(), {id, INT64_MAX, 0, 0}, 0);
  }
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cache.find(tokens[(i += 7919) % tokens.size()], 1));
}
BENCHMARK(BM_TokenCacheLookup);

}  // namespace
