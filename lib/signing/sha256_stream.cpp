// OpenSSL 3 deprecates the SHA256_* functions in favour of EVP, whose contexts are heap objects behind a provider
// dispatch; these are the same assembly underneath (SHA-NI where the CPU has it) and live in place.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "signing/sha256_stream.hpp"

#include <openssl/crypto.h>

#include <stdexcept>

#include "util/hex.hpp"

namespace obsgw::signing {

Sha256Stream::Sha256Stream() {
  if (!SHA256_Init(&ctx_)) throw std::runtime_error("SHA-256 failed");
}

Sha256Stream::~Sha256Stream() { OPENSSL_cleanse(&ctx_, sizeof ctx_); }

void Sha256Stream::update(std::string_view data) {
  if (!SHA256_Update(&ctx_, data.data(), data.size())) throw std::runtime_error("SHA-256 failed");
}

std::string Sha256Stream::hex_digest() {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  if (!SHA256_Final(digest, &ctx_) || !SHA256_Init(&ctx_)) throw std::runtime_error("SHA-256 failed");
  std::string out;
  util::append_hex(out, digest, sizeof digest);
  return out;
}

}  // namespace obsgw::signing
