#pragma once
// JWS compact serialization (RFC 7515) and signature verification with algorithms pinned to key types
// (RFC 7518): no "none", no HMAC with a public key, no algorithm a key was not made for.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "auth/jwk.hpp"

namespace obsgw::auth {

enum class JwsAlg { RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA };

// The asymmetric algorithms only; "none", HS*, unknown names and anything else give nullopt.
std::optional<JwsAlg> parse_jws_alg(std::string_view name) noexcept;
const char* to_string(JwsAlg alg) noexcept;

// Whether `key` may verify `alg`: the key type must be the one the algorithm is defined for (RSA for RS/PS,
// the matching curve for ES256/ES384, Ed25519 for EdDSA), and a key that names its "alg" only allows that one.
bool key_fits(JwsAlg alg, const VerificationKey& key) noexcept;

// Verifies `signature` (raw JWS bytes: R||S for ECDSA) over `signing_input`. Call key_fits() first.
bool verify_jws_signature(JwsAlg alg, const VerificationKey& key, std::string_view signing_input,
                          std::string_view signature);

// HMAC algorithms, usable only with a secret configured for a provider: never with a key from a JWK set.
enum class HmacAlg { HS256, HS384, HS512 };
std::optional<HmacAlg> parse_hmac_alg(std::string_view name) noexcept;
// Constant-time comparison of the MAC of `signing_input` under `secret` with `signature`.
bool verify_hmac_signature(HmacAlg alg, std::string_view secret, std::string_view signing_input,
                           std::string_view signature);

struct CompactJws {
  std::string header_json;
  std::string payload_json;
  std::string_view signing_input;  // "<header>.<payload>" as it appeared in the token
  std::string signature;
};

// Splits and decodes a compact JWS. Refuses more or fewer than three parts (a JWE has five), empty parts,
// anything that is not canonical base64url, and tokens longer than `max_size`.
std::optional<CompactJws> split_compact_jws(std::string_view token, std::size_t max_size, std::string& error);

}  // namespace obsgw::auth
