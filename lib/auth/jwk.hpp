#pragma once
// Public keys from JWK sets (RFC 7517/7518/8037), imported into OpenSSL once per key-set fetch: importing costs
// several signature verifications, so it never happens per request.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

namespace obsgw::auth {

enum class KeyKind { rsa, ec_p256, ec_p384, ed25519 };
const char* to_string(KeyKind kind) noexcept;

struct VerificationKey {
  std::string kid;  // may be empty
  std::string alg;  // the JWK's "alg" when it has one: then only that algorithm may use the key
  KeyKind kind = KeyKind::rsa;
  std::shared_ptr<EVP_PKEY> pkey;  // read-only after import; safe to share between threads
};

struct JwkSet {
  std::vector<VerificationKey> keys;
  std::vector<std::string> skipped;  // why each unusable key was left out ("keys[2]: use is \"enc\"")
};

// Parses a JWK Set document. Keys that cannot verify signatures (symmetric, encryption-only, unknown curves, RSA
// under 2048 bits, malformed) are skipped with a reason; a document that is not a JWK Set sets `error`.
JwkSet parse_jwk_set(std::string_view json, std::string& error);

// The RFC 7518/8037 JWK members of a public key, for tests and for publishing keys.
std::string public_jwk_json(const EVP_PKEY* pkey, std::string_view kid, std::string_view alg);

}  // namespace obsgw::auth
