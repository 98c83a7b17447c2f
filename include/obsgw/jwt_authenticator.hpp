#pragma once
/// @file
/// The JWT bearer-token Authenticator: signatures checked against each issuer's keys (OIDC discovery, a
/// jwks_uri, a JWKS file, PEM files, or a shared HMAC secret), claims validated, verified tokens cached.
/// Refusals are 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750) and a JSON body naming
/// the reason; the token itself never appears in a response or a log.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "obsgw/claim_rule.hpp"
#include "obsgw/identity_headers.hpp"
#include "obsgw/policy.hpp"
#include "obsgw/token_source.hpp"

namespace obsgw {

/// One token issuer. Keys come from exactly one of: `discovery`, `jwks_uri`, `jwks_file`, `public_key_files`,
/// `hmac_secret`.
struct JwtProviderOptions {
  std::string issuer;  ///< `iss` must equal this exactly; also selects the provider for a token

  bool discovery = false;                     ///< keys via <issuer>/.well-known/openid-configuration
  std::string jwks_uri;                       ///< keys fetched from here
  std::string jwks_file;                      ///< a local JWK Set
  std::vector<std::string> public_key_files;  ///< PEM public keys or certificates; kid = file name sans extension
  std::string hmac_secret;                    ///< HS256/384/512 with this secret (at least 32 bytes)

  std::string ca_file;      ///< for https fetches; empty: the system's trust store
  bool allow_http = false;  ///< permit http:// discovery and JWKS URLs (never for production)
  std::chrono::seconds refresh_interval{300};
  std::chrono::seconds min_refresh_interval{30};
  std::chrono::seconds max_refresh_interval{3600};
  std::chrono::milliseconds fetch_timeout{5000};
  /// A request arriving before the first key set was fetched waits this long, then gets 503.
  std::chrono::milliseconds cold_start_wait{5000};

  /// `aud` must contain one of these. Required: an issuer shared by many clients (a Keycloak realm, an Auth0
  /// tenant) would otherwise have every token it mints for any client accepted here (RFC 8725 3.9).
  std::vector<std::string> audiences;
  bool any_audience = false;  ///< explicit opt-out: accept tokens whatever their `aud`
  std::string token_type;              ///< the header's `typ` must equal this ("at+jwt"); empty: not checked
  bool require_exp = true;
  std::chrono::seconds leeway{60};
  std::vector<std::string> required_claims;
  std::vector<ClaimRule> rules;         ///< every token must satisfy all of these
  std::vector<std::string> algorithms;  ///< allowed `alg` values; empty: every algorithm its keys fit
  std::string groups_claim = "groups";  ///< dotted path read into Identity::groups
};

struct JwtAuthenticatorOptions {
  std::vector<JwtProviderOptions> providers;
  std::vector<TokenSource> sources{TokenSource{}};  ///< default: Authorization: Bearer
  bool forward_token = false;  ///< keep the credential in the forwarded request (removed by default)
  IdentityHeaders identity_headers;
  std::size_t cache_entries = 10000;  ///< verified tokens cached per io thread; 0 disables the cache
  std::size_t max_token_bytes = 16384;
  std::string realm = "obsgw";
};

/// Throws std::invalid_argument (or std::runtime_error for unreadable key files) naming the problem. Remote key
/// sets start loading at once, on a background thread.
std::shared_ptr<const Authenticator> make_jwt_authenticator(JwtAuthenticatorOptions options);

}  // namespace obsgw
