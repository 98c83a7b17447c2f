#pragma once
// Validation of a JWT's registered claims (RFC 7519 section 4.1) and header type (RFC 8725 3.11, RFC 9068).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace obsgw::auth {

struct ClaimRules {
  std::string issuer;                      // "iss" must equal this exactly (empty: not checked)
  std::vector<std::string> audiences;      // "aud" (string or array) must contain one of these (empty: not checked)
  bool require_exp = true;                 // a token without "exp" is refused unless this is false
  std::chrono::seconds leeway{60};         // clock skew allowed for exp, nbf and iat
  std::string typ;                         // the header's "typ" must equal this, case-insensitively (e.g. "at+jwt")
  std::vector<std::string> required;       // claims that must be present
};

// Why a token was refused; `code` is stable ("token_expired", ...), `message` says it to a person.
struct ClaimFailure {
  std::string code;
  std::string message;
};

// The claims the gateway reads from a verified token.
struct ValidatedClaims {
  std::string subject, issuer, client_id, email;
  std::vector<std::string> scopes;  // "scope" (space-separated) or "scp" (array)
  std::optional<std::int64_t> expires_at;
};

// A NumericDate member of `obj` (RFC 7519 section 2: seconds, fractions allowed), floored to whole seconds.
// nullopt when absent, or when present but not such a number (then `malformed` is set).
std::optional<std::int64_t> numeric_date(simdjson::dom::element obj, const char* key, bool& malformed);

// Checks `header_json` and `payload_json` against `rules` at time `now`. On success fills `out` and returns
// nullopt; otherwise the first failure.
std::optional<ClaimFailure> validate_claims(std::string_view header_json, std::string_view payload_json,
                                            const ClaimRules& rules, std::chrono::system_clock::time_point now,
                                            ValidatedClaims& out);

// The same on already parsed JSON (the verifier parses header and payload once, with per-thread parsers).
std::optional<ClaimFailure> validate_claims(simdjson::dom::element header, simdjson::dom::element payload,
                                            const ClaimRules& rules, std::chrono::system_clock::time_point now,
                                            ValidatedClaims& out);

}  // namespace obsgw::auth
