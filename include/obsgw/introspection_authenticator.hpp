#pragma once
/// @file
/// Opaque (non-JWT) access tokens, validated by asking the identity provider: RFC 7662 token introspection,
/// or the OIDC userinfo endpoint. Answers are cached per io thread (keyed by the token), for `cache_ttl` (and
/// never past the token's `exp`), so a busy client costs the provider one call per TTL, not one per request.
/// The call is made from the io thread without blocking it.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "obsgw/identity_headers.hpp"
#include "obsgw/policy.hpp"
#include "obsgw/token_source.hpp"

namespace obsgw {

struct IntrospectionAuthenticatorOptions {
  enum class Mode {
    introspection,  ///< POST token=... to `endpoint` with the client's credentials; `"active": true` admits
    userinfo,       ///< GET `endpoint` with the token as bearer; 200 admits
  };
  Mode mode = Mode::introspection;
  std::string endpoint;       ///< https URL
  std::string client_id;      ///< introspection: HTTP Basic credentials of the gateway at the provider
  std::string client_secret;
  std::string ca_file;        ///< empty: the system's trust store
  bool allow_http = false;
  std::chrono::milliseconds timeout{3000};
  std::chrono::seconds cache_ttl{60};
  std::string issuer;                   ///< introspection: "iss" must equal this when set
  /// introspection: the answer must say `"token_type": "Bearer"` (or DPoP). Refresh tokens, which must never
  /// reach a resource server (RFC 6749 1.5), are introspected as active by some providers without a token_type.
  bool require_token_type = true;
  std::vector<std::string> audiences;   ///< introspection: "aud" must contain one when set
  std::string groups_claim = "groups";

  std::vector<TokenSource> sources{TokenSource{}};
  bool forward_token = false;
  IdentityHeaders identity_headers;
  std::size_t cache_entries = 10000;  ///< per io thread
  std::string realm = "obsgw";
};

/// Throws std::invalid_argument naming the problem.
std::shared_ptr<const Authenticator> make_introspection_authenticator(IntrospectionAuthenticatorOptions options);

}  // namespace obsgw
