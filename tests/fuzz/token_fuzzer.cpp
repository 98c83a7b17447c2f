// Fuzzes what the authenticators read from clients: compact JWS splitting and decoding, JOSE header and claims
// validation, signature verification against fixed keys, JWK Set import, claim paths, and finding a credential
// in Authorization, Cookie and the query, browser sign-in cookies and callback parameters. Besides memory safety
// (ASan/UBSan), one property: no input ever verifies (the keys' private halves are thrown away, and the HMAC and
// cookie secrets are not in the input: a pass would be a forgery).

#include <openssl/evp.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "auth/claim_query.hpp"
#include "auth/claims.hpp"
#include "auth/jwk.hpp"
#include "auth/jws.hpp"
#include "auth/sealed_cookie.hpp"
#include "http/form_encoding.hpp"
#include "obsgw/token_source.hpp"

using namespace obsgw;
using namespace obsgw::auth;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct Fixture {
  std::vector<VerificationKey> keys;
  Fixture() {
    EVP_PKEY* rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    std::string error;
    auto set = parse_jwk_set("{\"keys\":[" + public_jwk_json(rsa, "r", "RS256") + "," + public_jwk_json(ec, "e", "ES256") + "]}",
                             error);
    keys = set.keys;
    EVP_PKEY_free(rsa);  // the fuzzer never has the private keys: nothing it makes can be genuine
    EVP_PKEY_free(ec);
  }
};

void fuzz_token(std::string_view in) {
  static Fixture f;
  std::string error;
  auto jws = split_compact_jws(in, 8192, error);
  if (!jws) return;
  ClaimRules rules;
  rules.issuer = "https://i";
  rules.audiences = {"a"};
  ValidatedClaims claims;
  (void)validate_claims(jws->header_json, jws->payload_json, rules, std::chrono::system_clock::now(), claims);
  for (const char* name : {"RS256", "PS256", "ES256", "EdDSA"}) {
    auto alg = parse_jws_alg(name);
    for (const auto& key : f.keys)
      if (key_fits(*alg, key)) check(!verify_jws_signature(*alg, key, jws->signing_input, jws->signature));
  }
  check(!verify_hmac_signature(HmacAlg::HS256, "0123456789abcdef0123456789abcdef", jws->signing_input, jws->signature));
}

void fuzz_json(std::string_view in) {
  std::string error;
  auto set = parse_jwk_set(in, error);
  check(error.empty() || set.keys.empty());
  for (const char* path : {"tenant_id", "groups", "realm_access.roles", "a.b.c", ""}) (void)claim_values(in, path);
  (void)split_words(in);
}

void fuzz_sources(std::string_view in) {
  RequestHead r;
  r.method = "GET";
  r.path = "/";
  std::string value(in);
  for (char& c : value)
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  r.headers.add("Authorization", value);
  r.headers.add("Cookie", value);
  r.headers.add("X-Token", value);
  r.query = value;
  std::vector<TokenSource> sources;
  for (const char* s : {"bearer", "basic", "header:X-Token", "cookie:session", "query:access_token"})
    sources.push_back(*TokenSource::parse(s));
  for (const auto& s : sources) {
    std::vector<TokenSource> one{s};
    auto found = find_token(r, one);
    RequestHead copy = r;
    remove_token(copy, s);
    if (found && s.kind == TokenSource::Kind::query) check(copy.query.size() <= r.query.size());
  }
}

void fuzz_cookie(std::string_view in) {
  static const CookieSealer sealer({std::string(32, 'k'), std::string(40, 'o')});
  check(!sealer.open(in, "obsgw session obsgw_session", 0));
  for (const char* name : {"state", "code", "error"}) {
    bool repeated = false;
    auto v = http::query_value(in, name, &repeated);
    check(!v || v->size() <= in.size());
  }
  check(http::percent_decode(http::form_encode(in)) == in);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz_token(in);
  fuzz_json(in);
  fuzz_sources(in);
  fuzz_cookie(in);
  // A token made of fuzzed base64url parts exercises the JSON and signature paths more than raw bytes do.
  auto a = in.find('|'), b = a == std::string_view::npos ? a : in.find('|', a + 1);
  if (b != std::string_view::npos)
    fuzz_token(base64url_encode(in.substr(0, a)) + "." + base64url_encode(in.substr(a + 1, b - a - 1)) + "." +
               base64url_encode(in.substr(b + 1)));
  return 0;
}
