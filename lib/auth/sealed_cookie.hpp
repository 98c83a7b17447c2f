#pragma once
// Browser state the gateway keeps in cookies instead of in its own memory: a login in progress and a signed-in
// session. Nothing is shared between gateway instances, so any instance of a fleet can finish a login that
// another started, and a restart signs nobody out.
//
// A sealed value is AES-256-GCM: confidential (the identity is not readable by scripts or proxies in between)
// and authenticated (not forgeable, not editable). Each secret gives its own key through HKDF-SHA256, and the
// cookie's purpose ("session", "login") and its expiry are authenticated with it, so a login cookie cannot be
// replayed as a session and an expired value cannot be revived by editing its date.
//
// Layout, base64url without padding:
//   version (1 byte, 1) | key hint (4 bytes) | expires_at (8 bytes, big-endian unix seconds) | nonce (12) |
//   ciphertext | tag (16)
// The key hint (the first bytes of SHA-256 of the key) picks the secret among several during a rotation
// without trying each.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace obsgw::auth {

class CookieSealer {
 public:
  // The first secret seals; every secret opens (rotation: put the new secret first, drop the old one once no
  // session sealed with it can still be alive). Throws std::invalid_argument when there is no secret or one is
  // shorter than 32 bytes.
  explicit CookieSealer(const std::vector<std::string>& secrets);

  std::string seal(std::string_view plaintext, std::string_view purpose, std::int64_t expires_at) const;

  // The plaintext, or nullopt when the value is malformed, was sealed with an unknown secret or another purpose,
  // was tampered with, or expired (expires_at <= now).
  std::optional<std::string> open(std::string_view sealed, std::string_view purpose, std::int64_t now,
                                  std::int64_t* expires_at = nullptr) const;

  // Bytes a sealed value adds to its plaintext, before base64url.
  static constexpr std::size_t overhead = 1 + 4 + 8 + 12 + 16;

 private:
  struct Key {
    std::array<unsigned char, 32> bytes;
    std::array<unsigned char, 4> hint;
  };
  std::vector<Key> keys_;
};

// Cryptographically random bytes as base64url (for state, nonce and PKCE verifiers). Throws on RNG failure.
std::string random_token(std::size_t bytes);

}  // namespace obsgw::auth
