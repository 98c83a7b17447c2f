#pragma once
// SHA-256 fed piece by piece, so that a body is hashed as it arrives (each piece while it is still in the CPU's
// cache, and while the rest is on its way) instead of in one pass once it is whole.

#include <openssl/sha.h>  // the context type only; the functions are used in the .cpp

#include <string>
#include <string_view>

namespace obsgw::signing {

class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void update(std::string_view data);
  /// The lower-case hex digest of everything given so far; the stream starts over afterwards.
  std::string hex_digest();

 private:
  SHA256_CTX ctx_;  // in place: no allocation per body (EVP's contexts are heap objects)
};

}  // namespace obsgw::signing
