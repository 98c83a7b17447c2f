// OpenSSL 3 deprecates the SHA256_* functions in favour of EVP, whose contexts are heap objects behind a provider
// dispatch; these are the same assembly underneath (SHA-NI where the CPU has it) and live in place.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "signing/sha256_stream.hpp"

#include <openssl/crypto.h>

#include <stdexcept>

namespace obsgw::signing {

Sha256Stream::Sha256Stream() {
  if (!SHA256_Init(&ctx_)) throw std::runtime_error("SHA-256 failed");
}

Sha256Stream::~Sha256Stream() { OPENSSL_cleanse(&ctx_, sizeof ctx_); }

void Sha256Stream::update(std::string_view data) {
  if (!SHA256_Update(&ctx_, data.data(), data.size())) throw std::runtime_error("SHA-256 failed");
}

std::string Sha256Stream::hex_digest() {
  static constexpr char kHex[] = "0123456789abcdef";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  if (!SHA256_Final(digest, &ctx_) || !SHA256_Init(&ctx_)) throw std::runtime_error("SHA-256 failed");
  std::string out(2 * sizeof digest, '\0');
  for (std::size_t i = 0; i < sizeof digest; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace obsgw::signing
