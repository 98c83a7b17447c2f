#include "auth/jws.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ecdsa.h>
#include <openssl/rsa.h>

#include <memory>

#include "auth/base64url.hpp"
#include "auth/jwk.hpp"
#include "jwt_test_support.hpp"

namespace obsgw::auth {
namespace {

using ::testing::HasSubstr;

std::string token(JwsAlg alg, EVP_PKEY* key, std::string_view header_alg, std::string_view payload) {
  std::string input = base64url_encode(std::string("{\"alg\":\"") + std::string(header_alg) + "\",\"typ\":\"JWT\"}") +
                      "." + base64url_encode(payload);
  return input + "." + base64url_encode(sign(alg, key, input));
}

VerificationKey import(EVP_PKEY* key, std::string_view kid, std::string_view alg) {
  std::string error;
  auto set = parse_jwk_set("{\"keys\":[" + public_jwk_json(key, kid, alg) + "]}", error);
  EXPECT_TRUE(error.empty()) << error;
  EXPECT_EQ(set.keys.size(), 1u) << (set.skipped.empty() ? "" : set.skipped[0]);
  return set.keys.empty() ? VerificationKey{} : set.keys[0];
}

bool verifies(const std::string& tok, const VerificationKey& key) {
  std::string error;
  auto jws = split_compact_jws(tok, 16 * 1024, error);
  if (!jws) return false;
  auto alg_pos = jws->header_json.find("\"alg\":\"");
  auto name = jws->header_json.substr(alg_pos + 7, jws->header_json.find('"', alg_pos + 7) - alg_pos - 7);
  auto alg = parse_jws_alg(name);
  return alg && key_fits(*alg, key) && verify_jws_signature(*alg, key, jws->signing_input, jws->signature);
}

TEST(Base64url, RoundTripAndStrictness) {
  for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\xff\xfe\x00\x01", 4)})
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("Zm9v="));   // padding
  EXPECT_FALSE(base64url_decode("+/8"));     // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm9vY"));   // length 1 mod 4
  EXPECT_FALSE(base64url_decode("QR"));      // non-canonical: trailing bits set ("QQ" is the one spelling)
  EXPECT_TRUE(base64url_decode("QQ"));
  EXPECT_FALSE(base64url_decode("QUF"));     // non-canonical with three characters ("QUE" is the one spelling)
  EXPECT_EQ(base64url_decode("QUE"), "AA");
  EXPECT_FALSE(base64url_decode("QUJD!EVG"));  // an invalid character in a full group
  // Every length and byte value: decoding undoes encoding (the decoder works four characters at a time).
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    bytes.push_back(static_cast<char>((i * 167 + 13) & 0xff));
    ASSERT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << "length " << bytes.size();
  }
  EXPECT_FALSE(base64url_decode("Zm 9v"));
}

struct AlgCase {
  JwsAlg alg;
  const char* key_type;
};

class EveryAlgorithm : public ::testing::TestWithParam<AlgCase> {};

TEST_P(EveryAlgorithm, VerifiesGenuineAndRefusesTampered) {
  auto [alg, type] = GetParam();
  auto key = generate(type);
  auto vk = import(key.get(), "k1", to_string(alg));
  std::string good = token(alg, key.get(), to_string(alg), R"({"sub":"agent-a","tenant_id":"acme"})");
  EXPECT_TRUE(verifies(good, vk));

  // Payload changed after signing (still valid base64url and JSON).
  auto dot1 = good.find('.'), dot2 = good.rfind('.');
  std::string tampered = good.substr(0, dot1 + 1) + base64url_encode(R"({"sub":"agent-a","tenant_id":"evil"})") +
                         good.substr(dot2);
  EXPECT_FALSE(verifies(tampered, vk));

  // Signed by another key of the same type.
  auto other = generate(type);
  EXPECT_FALSE(verifies(token(alg, other.get(), to_string(alg), "{}"), vk));

  // A signature truncated by one byte.
  std::string sig = *base64url_decode(good.substr(dot2 + 1));
  EXPECT_FALSE(verifies(good.substr(0, dot2 + 1) + base64url_encode(sig.substr(0, sig.size() - 1)), vk));
}

INSTANTIATE_TEST_SUITE_P(Jws, EveryAlgorithm,
                         ::testing::Values(AlgCase{JwsAlg::RS256, "RSA"}, AlgCase{JwsAlg::RS384, "RSA"},
                                           AlgCase{JwsAlg::RS512, "RSA"}, AlgCase{JwsAlg::PS256, "RSA"},
                                           AlgCase{JwsAlg::PS384, "RSA"}, AlgCase{JwsAlg::PS512, "RSA"},
                                           AlgCase{JwsAlg::ES256, "P-256"}, AlgCase{JwsAlg::ES384, "P-384"},
                                           AlgCase{JwsAlg::EdDSA, "Ed25519"}),
                         [](const auto& info) { return std::string(to_string(info.param.alg)); });

TEST(JwsAttacks, NoneAndHmacAreNotAlgorithmsHere) {
  for (const char* name : {"none", "None", "HS256", "HS384", "HS512", "RS1", "", "rs256", "ES256K"})
    EXPECT_FALSE(parse_jws_alg(name)) << name;
}

TEST(JwsAttacks, AlgorithmIsPinnedToTheKeyType) {
  auto rsa = generate("RSA");
  auto ec = generate("P-256");
  auto rsa_key = import(rsa.get(), "r", "");  // no "alg" in the JWK: the key type still pins the family
  rsa_key.alg.clear();
  auto ec_key = import(ec.get(), "e", "ES256");
  EXPECT_FALSE(key_fits(JwsAlg::ES256, rsa_key));
  EXPECT_FALSE(key_fits(JwsAlg::EdDSA, rsa_key));
  EXPECT_TRUE(key_fits(JwsAlg::PS256, rsa_key));
  EXPECT_FALSE(key_fits(JwsAlg::RS256, ec_key));
  EXPECT_FALSE(key_fits(JwsAlg::ES384, ec_key));  // wrong curve
  // A JWK that names its alg allows only that one.
  auto rs_only = import(rsa.get(), "r2", "RS256");
  EXPECT_FALSE(key_fits(JwsAlg::PS256, rs_only));
  EXPECT_FALSE(verify_jws_signature(JwsAlg::PS256, rs_only, "a.b", sign(JwsAlg::PS256, rsa.get(), "a.b")));
  // An RS256-labelled token verified with an EC key never gets to OpenSSL.
  EXPECT_FALSE(verifies(token(JwsAlg::ES256, ec.get(), "RS256", "{}"), ec_key));
}

TEST(JwsAttacks, EcdsaSignatureMustHaveTheFixedSize) {
  auto ec = generate("P-256");
  auto key = import(ec.get(), "e", "ES256");
  std::string raw = sign(JwsAlg::ES256, ec.get(), "a.b");
  EXPECT_TRUE(verify_jws_signature(JwsAlg::ES256, key, "a.b", raw));
  EXPECT_FALSE(verify_jws_signature(JwsAlg::ES256, key, "a.b", raw + std::string(1, '\0')));
  EXPECT_FALSE(verify_jws_signature(JwsAlg::ES256, key, "a.b", std::string(64, '\0')));
}

TEST(CompactJws, Shapes) {
  std::string error;
  EXPECT_FALSE(split_compact_jws("a.b", 100, error));
  EXPECT_THAT(error, HasSubstr("three"));
  EXPECT_FALSE(split_compact_jws("a.b.c.d.e", 100, error));  // JWE
  EXPECT_FALSE(split_compact_jws("a..c", 100, error));
  EXPECT_FALSE(split_compact_jws("e30.e30.", 100, error));  // empty signature
  EXPECT_FALSE(split_compact_jws("e30=.e30.AA", 100, error));
  EXPECT_FALSE(split_compact_jws("e30.e30.AA", 5, error));
  EXPECT_EQ(error, "token too large");
  auto ok = split_compact_jws("e30.eyJhIjoxfQ.AAAA", 100, error);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->header_json, "{}");
  EXPECT_EQ(ok->payload_json, "{\"a\":1}");
  EXPECT_EQ(ok->signing_input, "e30.eyJhIjoxfQ");
}

TEST(JwkSet, SkipsKeysThatCannotVerifyAndSaysWhy) {
  auto good = generate("P-256");
  std::string small_rsa;
  {
    EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
    small_rsa = public_jwk_json(k, "small", "RS256");
    EVP_PKEY_free(k);
  }
  std::string json = "{\"keys\":[" + public_jwk_json(good.get(), "good", "ES256") + "," +
                     R"({"kty":"oct","k":"c2VjcmV0","kid":"hmac"},)"
                     R"({"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},)" + small_rsa + "," +
                     R"({"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},)"
                     R"({"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"},)"
                     R"({"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"AAAA"},)"
                     R"({"kty":"RSA","key_ops":["encrypt"],"n":"AQAB","e":"AQAB"}]})";
  std::string error;
  auto set = parse_jwk_set(json, error);
  EXPECT_TRUE(error.empty());
  ASSERT_EQ(set.keys.size(), 1u);
  EXPECT_EQ(set.keys[0].kid, "good");
  EXPECT_EQ(set.keys[0].kind, KeyKind::ec_p256);
  EXPECT_THAT(set.skipped, ::testing::ElementsAre(HasSubstr("keys[1]: unsupported key type \"oct\""),
                                                  HasSubstr("keys[2]: use is \"enc\""),
                                                  HasSubstr("keys[3]: RSA modulus of 1024 bits"),
                                                  HasSubstr("keys[4]: not a valid point on the curve"),
                                                  HasSubstr("keys[5]: unsupported key type \"EC\" (crv \"secp256k1\")"),
                                                  HasSubstr("keys[6]: contains private key material"),
                                                  HasSubstr("keys[7]: key_ops without \"verify\"")));
  parse_jwk_set("[1,2]", error);
  EXPECT_THAT(error, HasSubstr("not a JWK Set"));
}

}  // namespace
}  // namespace obsgw::auth
