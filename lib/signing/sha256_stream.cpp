// OpenSSL 3 deprecates the SHA256_* functions in favour of EVP, whose contexts are heap objects behind a provider
// dispatch; these are the same assembly underneath (SHA-NI where the CPU has it) and live in place.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "signing/sha256_stream.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

namespace obsgw::signing {

namespace {
SHA256_CTX* as_ctx(unsigned char* storage) noexcept { return reinterpret_cast<SHA256_CTX*>(storage); }
}  // namespace

Sha256Stream::Sha256Stream() noexcept {
  static_assert(sizeof(SHA256_CTX) <= sizeof(ctx_) && alignof(SHA256_CTX) <= 8, "SHA256_CTX no longer fits");
  SHA256_Init(as_ctx(ctx_));
}

Sha256Stream::~Sha256Stream() { OPENSSL_cleanse(ctx_, sizeof ctx_); }

void Sha256Stream::update(std::string_view data) noexcept { SHA256_Update(as_ctx(ctx_), data.data(), data.size()); }

std::string Sha256Stream::hex_digest() {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(digest, as_ctx(ctx_));
  SHA256_Init(as_ctx(ctx_));
  std::string out(2 * sizeof digest, '\0');
  for (std::size_t i = 0; i < sizeof digest; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace obsgw::signing
