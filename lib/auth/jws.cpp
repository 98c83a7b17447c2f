#include "auth/jws.hpp"

#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <memory>
#include <vector>

#include "auth/base64url.hpp"

namespace obsgw::auth {

namespace {
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};

const EVP_MD* digest_of(JwsAlg alg) noexcept {
  switch (alg) {
    case JwsAlg::RS256: case JwsAlg::PS256: case JwsAlg::ES256: return EVP_sha256();
    case JwsAlg::RS384: case JwsAlg::PS384: case JwsAlg::ES384: return EVP_sha384();
    case JwsAlg::RS512: case JwsAlg::PS512: return EVP_sha512();
    case JwsAlg::EdDSA: return nullptr;  // Ed25519 hashes internally
  }
  return nullptr;
}

// JWS carries ECDSA signatures as fixed-size R||S; OpenSSL wants DER.
std::optional<std::string> ecdsa_raw_to_der(std::string_view raw, std::size_t coordinate_size) {
  if (raw.size() != 2 * coordinate_size) return std::nullopt;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(coordinate_size), nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + coordinate_size,
                        static_cast<int>(coordinate_size), nullptr);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return std::nullopt;
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}
}  // namespace

std::optional<JwsAlg> parse_jws_alg(std::string_view n) noexcept {
  if (n == "RS256") return JwsAlg::RS256;
  if (n == "RS384") return JwsAlg::RS384;
  if (n == "RS512") return JwsAlg::RS512;
  if (n == "PS256") return JwsAlg::PS256;
  if (n == "PS384") return JwsAlg::PS384;
  if (n == "PS512") return JwsAlg::PS512;
  if (n == "ES256") return JwsAlg::ES256;
  if (n == "ES384") return JwsAlg::ES384;
  if (n == "EdDSA") return JwsAlg::EdDSA;
  return std::nullopt;
}

const char* to_string(JwsAlg alg) noexcept {
  switch (alg) {
    case JwsAlg::RS256: return "RS256";
    case JwsAlg::RS384: return "RS384";
    case JwsAlg::RS512: return "RS512";
    case JwsAlg::PS256: return "PS256";
    case JwsAlg::PS384: return "PS384";
    case JwsAlg::PS512: return "PS512";
    case JwsAlg::ES256: return "ES256";
    case JwsAlg::ES384: return "ES384";
    case JwsAlg::EdDSA: return "EdDSA";
  }
  return "?";
}

bool key_fits(JwsAlg alg, const VerificationKey& key) noexcept {
  if (!key.alg.empty() && key.alg != to_string(alg)) return false;
  switch (alg) {
    case JwsAlg::RS256: case JwsAlg::RS384: case JwsAlg::RS512:
    case JwsAlg::PS256: case JwsAlg::PS384: case JwsAlg::PS512: return key.kind == KeyKind::rsa;
    case JwsAlg::ES256: return key.kind == KeyKind::ec_p256;
    case JwsAlg::ES384: return key.kind == KeyKind::ec_p384;
    case JwsAlg::EdDSA: return key.kind == KeyKind::ed25519;
  }
  return false;
}

namespace {
// OpenSSL 3 looks algorithms up by name on every implicit use (EVP_sha256() in an init call), and building a
// verification context costs about as much as an RSA verify. So digests are fetched once per process, and each
// io thread keeps one ready context per (key, algorithm), on which EVP_PKEY_verify can be called again and again.
const EVP_MD* fetched_digest(JwsAlg alg) noexcept {
  static EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static EVP_MD* sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  const EVP_MD* implicit = digest_of(alg);
  if (implicit == EVP_sha256()) return sha256;
  if (implicit == EVP_sha384()) return sha384;
  if (implicit == EVP_sha512()) return sha512;
  return nullptr;
}

struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
};

struct ReadyContext {
  std::shared_ptr<EVP_PKEY> key;  // held, so that the pointer cannot be reused by another key meanwhile
  JwsAlg alg;
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx;
};

EVP_PKEY_CTX* ready_context(JwsAlg alg, const std::shared_ptr<EVP_PKEY>& key) {
  thread_local std::vector<ReadyContext> contexts;
  for (auto& c : contexts)
    if (c.key == key && c.alg == alg) return c.ctx.get();
  if (contexts.size() >= 64) contexts.clear();  // key sets rotate rarely; keep the list short
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_signature_md(ctx.get(), fetched_digest(alg)) != 1)
    return nullptr;
  if (alg == JwsAlg::RS256 || alg == JwsAlg::RS384 || alg == JwsAlg::RS512) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) return nullptr;
  } else if (alg == JwsAlg::PS256 || alg == JwsAlg::PS384 || alg == JwsAlg::PS512) {
    if (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) != 1)
      return nullptr;
  }
  contexts.push_back(ReadyContext{key, alg, std::move(ctx)});
  return contexts.back().ctx.get();
}
}  // namespace

bool verify_jws_signature(JwsAlg alg, const VerificationKey& key, std::string_view signing_input,
                          std::string_view signature) {
  if (!key.pkey || !key_fits(alg, key)) return false;
  if (alg == JwsAlg::EdDSA) {  // pure Ed25519 signs the message itself: no digest to verify against
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.pkey.get()) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
  }
  std::string der;
  if (alg == JwsAlg::ES256 || alg == JwsAlg::ES384) {
    auto converted = ecdsa_raw_to_der(signature, alg == JwsAlg::ES256 ? 32 : 48);
    if (!converted) return false;
    der = std::move(*converted);
    signature = der;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const EVP_MD* md = fetched_digest(alg);
  if (!md || EVP_Digest(signing_input.data(), signing_input.size(), digest, &digest_len, md, nullptr) != 1) return false;
  EVP_PKEY_CTX* ctx = ready_context(alg, key.pkey);
  if (!ctx) return false;
  bool ok = EVP_PKEY_verify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(), digest,
                            digest_len) == 1;
  if (!ok) ERR_clear_error();  // a refused signature leaves errors on this thread's OpenSSL queue
  return ok;
}

std::optional<HmacAlg> parse_hmac_alg(std::string_view n) noexcept {
  if (n == "HS256") return HmacAlg::HS256;
  if (n == "HS384") return HmacAlg::HS384;
  if (n == "HS512") return HmacAlg::HS512;
  return std::nullopt;
}

bool verify_hmac_signature(HmacAlg alg, std::string_view secret, std::string_view signing_input,
                           std::string_view signature) {
  const EVP_MD* md = alg == HmacAlg::HS256 ? EVP_sha256() : alg == HmacAlg::HS384 ? EVP_sha384() : EVP_sha512();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(md, secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(signing_input.data()),
            signing_input.size(), mac, &len))
    return false;
  return signature.size() == len && CRYPTO_memcmp(mac, signature.data(), len) == 0;
}

std::optional<CompactJws> split_compact_jws(std::string_view token, std::size_t max_size, std::string& error) {
  if (token.size() > max_size) {
    error = "token too large";
    return std::nullopt;
  }
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (first == std::string_view::npos || second == std::string_view::npos ||
      token.find('.', second + 1) != std::string_view::npos) {
    error = "not a compact JWS (three dot-separated parts)";
    return std::nullopt;
  }
  std::string_view h = token.substr(0, first), p = token.substr(first + 1, second - first - 1),
                   s = token.substr(second + 1);
  if (h.empty() || p.empty() || s.empty()) {
    error = "empty JWS part";
    return std::nullopt;
  }
  auto header = base64url_decode(h), payload = base64url_decode(p), signature = base64url_decode(s);
  if (!header || !payload || !signature) {
    error = "invalid base64url";
    return std::nullopt;
  }
  return CompactJws{std::move(*header), std::move(*payload), token.substr(0, second), std::move(*signature)};
}

}  // namespace obsgw::auth
