#pragma once
// Test support: keys and signatures made the way a token issuer makes them.

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "auth/jws.hpp"

namespace obsgw::auth {

inline std::shared_ptr<EVP_PKEY> generate(const char* type) {
  EVP_PKEY* k = nullptr;
  if (std::string_view(type) == "RSA") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  else if (std::string_view(type) == "P-256" || std::string_view(type) == "P-384") k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", type);
  else k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free);
}

// Signs like a JWS issuer would (raw R||S for ECDSA).
inline std::string sign(JwsAlg alg, EVP_PKEY* key, std::string_view input) {
  const EVP_MD* md = nullptr;
  switch (alg) {
    case JwsAlg::RS256: case JwsAlg::PS256: case JwsAlg::ES256: md = EVP_sha256(); break;
    case JwsAlg::RS384: case JwsAlg::PS384: case JwsAlg::ES384: md = EVP_sha384(); break;
    case JwsAlg::RS512: case JwsAlg::PS512: md = EVP_sha512(); break;
    case JwsAlg::EdDSA: break;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit(ctx, &pctx, md, nullptr, key);
  if (alg == JwsAlg::PS256 || alg == JwsAlg::PS384 || alg == JwsAlg::PS512) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg == JwsAlg::ES256 || alg == JwsAlg::ES384) {
    int size = alg == JwsAlg::ES256 ? 32 : 48;
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    std::string raw(static_cast<std::size_t>(2 * size), '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), size);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + size, size);
    ECDSA_SIG_free(es);
    return raw;
  }
  return sig;
}


// A compact JWS with the given header and payload JSON.
inline std::string make_jwt(JwsAlg alg, EVP_PKEY* key, std::string_view header_json, std::string_view payload_json) {
  std::string input = base64url_encode(header_json) + "." + base64url_encode(payload_json);
  return input + "." + base64url_encode(sign(alg, key, input));
}

}  // namespace obsgw::auth
