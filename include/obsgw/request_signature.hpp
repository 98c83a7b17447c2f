#pragma once
/// @file
/// HMAC-SHA256 request signatures: what the gateway's Signer sends upstream, what services behind the gateway
/// verify, and what agents may send to the gateway (the "hmac" Authenticator). One scheme for all three.
///
/// Headers:
///   X-Gateway-Timestamp:      Unix seconds when signed
///   X-Gateway-Key-Id:         names the secret (rotation: the verifier knows several)
///   X-Gateway-Signed-Headers: lower-case names of the signed headers, ';'-separated (may be empty)
///   X-Gateway-Content-SHA256: hex SHA-256 of the body (of nothing, for a request without one)
///   X-Gateway-Signature:      "sha256=" + hex HMAC-SHA256(secret, canonical string)
///
/// The canonical string is these lines joined by '\n' (no trailing newline):
///   OBSGW-HMAC-SHA256
///   <timestamp>
///   <key id>
///   <method>
///   <path, plus '?' and the query when there is one, as on the request line the receiver gets (what the
///    gateway forwards; an agent signing for the hmac Authenticator signs its path in canonical form: no dot
///    segments or "//", unreserved characters not percent-encoded, as the gateway normalises it)>
///   <signed header names, lower-case, as in X-Gateway-Signed-Headers>
///   <name>:<value>      one line per signed header: every field of that name, trimmed, joined with ','
///                        ("" when absent)
///   <hex SHA-256 of the body>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "obsgw/headers.hpp"

namespace obsgw {

inline constexpr std::string_view kSignatureTimestampHeader = "X-Gateway-Timestamp";
inline constexpr std::string_view kSignatureKeyIdHeader = "X-Gateway-Key-Id";
inline constexpr std::string_view kSignedHeadersHeader = "X-Gateway-Signed-Headers";
inline constexpr std::string_view kContentSha256Header = "X-Gateway-Content-SHA256";
inline constexpr std::string_view kSignatureHeader = "X-Gateway-Signature";
/// All five, for code that sets or removes them together.
inline constexpr std::array<std::string_view, 5> kSignatureHeaders = {
    kSignatureTimestampHeader, kSignatureKeyIdHeader, kSignedHeadersHeader, kContentSha256Header, kSignatureHeader};

/// Hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// The canonical string of a request. `signed_headers` are lower-case names; values are read from `headers`.
std::string canonical_signature_string(std::string_view method, std::string_view target, std::int64_t timestamp,
                                       std::string_view key_id, const std::vector<std::string>& signed_headers,
                                       const Headers& headers, std::string_view body_sha256_hex);
/// The same, written into `out` (replacing its content): a caller that keeps `out` allocates nothing. No
/// argument may point into `out`.
void canonical_signature_string(std::string& out, std::string_view method, std::string_view target,
                                std::int64_t timestamp, std::string_view key_id,
                                const std::vector<std::string>& signed_headers, const Headers& headers,
                                std::string_view body_sha256_hex);

/// A named HMAC-SHA256 secret (at least 32 bytes). Immutable; usable from any thread. The secret's keyed hash
/// states are computed once, so signing costs the hashing of the text and two blocks, and allocates at most its
/// result.
class SigningKey {
 public:
  /// Throws std::invalid_argument for an empty id or a secret shorter than 32 bytes.
  SigningKey(std::string id, std::string secret);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  const std::string& id() const noexcept { return id_; }
  /// "sha256=" + hex HMAC-SHA256(secret, text).
  std::string sign(std::string_view text) const;
  /// The same, written into `out` (replacing its content).
  void sign(std::string_view text, std::string& out) const;

 private:
  struct Pads;  // SHA-256 states after the inner and outer key blocks
  std::string id_;
  std::unique_ptr<Pads> pads_;
};

/// Checks signed requests: the key is known, the timestamp within the window, the body's digest right, the
/// signature right (compared in constant time).
class SignatureVerifier {
 public:
  enum class Result {
    ok,
    missing,        ///< no X-Gateway-Signature
    malformed,      ///< a signature header is missing or unparsable
    unknown_key,    ///< X-Gateway-Key-Id names no key
    stale,          ///< timestamp outside the window (replayed, or clocks apart)
    body_mismatch,  ///< the body's SHA-256 differs from X-Gateway-Content-SHA256
    bad_signature,
  };

  SignatureVerifier(std::vector<std::shared_ptr<const SigningKey>> keys, std::chrono::seconds window);

  /// `now` in Unix seconds. On `ok`, `key_id` (when given) receives the key's id.
  Result verify(std::string_view method, std::string_view target, const Headers& headers, std::string_view body,
                std::int64_t now, std::string* key_id = nullptr) const;
  /// The same with the body's hex SHA-256 computed by the caller (a body hashed as it arrived).
  Result verify_digest(std::string_view method, std::string_view target, const Headers& headers,
                       std::string_view body_sha256_hex, std::int64_t now, std::string* key_id = nullptr) const;

 private:
  // The body's digest is computed (from `body`) only once the cheap checks passed, unless given (non-empty).
  Result check(std::string_view method, std::string_view target, const Headers& headers, std::string_view body,
               std::string_view body_sha256_hex, std::int64_t now, std::string* key_id) const;

  std::vector<std::shared_ptr<const SigningKey>> keys_;
  std::chrono::seconds window_;
};

const char* to_string(SignatureVerifier::Result r) noexcept;

}  // namespace obsgw
