#include "auth/sealed_cookie.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "auth/base64url.hpp"

namespace obsgw::auth {

namespace {
constexpr unsigned char kVersion = 1;
constexpr std::size_t kHintBytes = 4, kExpiryBytes = 8, kNonceBytes = 12, kTagBytes = 16;
constexpr std::size_t kHeaderBytes = 1 + kHintBytes + kExpiryBytes;  // authenticated, not encrypted

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

std::array<unsigned char, 32> derive_key(std::string_view secret) {
  std::array<unsigned char, 32> key{};
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  if (!ctx) throw std::runtime_error("HKDF is not available in this OpenSSL");
  static constexpr char kSalt[] = "obsgw sealed cookie salt";
  static constexpr char kInfo[] = "obsgw sealed cookie v1 aes-256-gcm";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(secret.data()), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kSalt), sizeof kSalt - 1),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kInfo), sizeof kInfo - 1),
      OSSL_PARAM_construct_end()};
  const int ok = EVP_KDF_derive(ctx, key.data(), key.size(), params);
  EVP_KDF_CTX_free(ctx);
  if (ok != 1) throw std::runtime_error("HKDF derivation failed");
  return key;
}

void put_be64(unsigned char* out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<unsigned char>(v);
}
std::uint64_t get_be64(const unsigned char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

// The additional authenticated data: the header and the purpose, so that neither can be changed or swapped.
bool add_aad(EVP_CIPHER_CTX* c, const unsigned char* header, std::string_view purpose) {
  int n = 0;
  return EVP_CipherUpdate(c, nullptr, &n, header, static_cast<int>(kHeaderBytes)) == 1 &&
         EVP_CipherUpdate(c, nullptr, &n, reinterpret_cast<const unsigned char*>(purpose.data()),
                          static_cast<int>(purpose.size())) == 1;
}
}  // namespace

CookieSealer::CookieSealer(const std::vector<std::string>& secrets) {
  if (secrets.empty()) throw std::invalid_argument("at least one cookie secret is required");
  for (std::size_t i = 0; i < secrets.size(); ++i) {
    if (secrets[i].size() < 32)
      throw std::invalid_argument("cookie secret " + std::to_string(i + 1) + " has " + std::to_string(secrets[i].size()) +
                                  " bytes; at least 32 are required (openssl rand -base64 32)");
    Key k{derive_key(secrets[i]), {}};
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(k.bytes.data(), k.bytes.size(), digest);
    std::memcpy(k.hint.data(), digest, kHintBytes);
    keys_.push_back(k);
  }
}

std::string CookieSealer::seal(std::string_view plaintext, std::string_view purpose, std::int64_t expires_at) const {
  const Key& key = keys_.front();
  std::string raw(kHeaderBytes + kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  out[0] = kVersion;
  std::memcpy(out + 1, key.hint.data(), kHintBytes);
  put_be64(out + 1 + kHintBytes, static_cast<std::uint64_t>(expires_at));
  unsigned char* nonce = out + kHeaderBytes;
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) throw std::runtime_error("RAND_bytes failed");
  CipherCtx c(EVP_CIPHER_CTX_new());
  int n = 0;
  unsigned char* body = nonce + kNonceBytes;
  if (!c || EVP_EncryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, key.bytes.data(), nonce) != 1 ||
      !add_aad(c.get(), out, purpose) ||
      EVP_EncryptUpdate(c.get(), body, &n, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(c.get(), body + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), body + plaintext.size()) != 1)
    throw std::runtime_error("AES-256-GCM sealing failed");
  return base64url_encode(raw);
}

std::optional<std::string> CookieSealer::open(std::string_view sealed, std::string_view purpose, std::int64_t now,
                                              std::int64_t* expires_at) const {
  if (sealed.size() > 8192) return std::nullopt;
  auto raw = base64url_decode(sealed);
  if (!raw || raw->size() < overhead || static_cast<unsigned char>((*raw)[0]) != kVersion) return std::nullopt;
  const auto* in = reinterpret_cast<const unsigned char*>(raw->data());
  const Key* key = nullptr;
  for (const auto& k : keys_)
    if (std::memcmp(k.hint.data(), in + 1, kHintBytes) == 0) key = &k;
  if (!key) return std::nullopt;
  const auto expiry = static_cast<std::int64_t>(get_be64(in + 1 + kHintBytes));
  const unsigned char* nonce = in + kHeaderBytes;
  const unsigned char* body = nonce + kNonceBytes;
  const std::size_t body_bytes = raw->size() - overhead;
  std::string plain(body_bytes, '\0');
  CipherCtx c(EVP_CIPHER_CTX_new());
  int n = 0;
  unsigned char tag[kTagBytes];
  std::memcpy(tag, body + body_bytes, kTagBytes);
  if (!c || EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, key->bytes.data(), nonce) != 1 ||
      !add_aad(c.get(), in, purpose) ||
      EVP_DecryptUpdate(c.get(), reinterpret_cast<unsigned char*>(plain.data()), &n, body, static_cast<int>(body_bytes)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag) != 1 ||
      EVP_DecryptFinal_ex(c.get(), reinterpret_cast<unsigned char*>(plain.data()) + n, &n) != 1)
    return std::nullopt;
  // Checked only once authenticated: an attacker learns nothing from which check failed.
  if (expiry <= now) return std::nullopt;
  if (expires_at) *expires_at = expiry;
  return plain;
}

std::string random_token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return base64url_encode(raw);
}

}  // namespace obsgw::auth
