#pragma once
/// @file
/// Static API keys for clients without an identity provider. The config holds only the SHA-256 of each key
/// (`printf %s "$KEY" | sha256sum`), each bound to an identity and the tenants it may act for. Keys should be
/// long random strings (32 bytes or more): a fast hash is then as good as a slow one.

#include <memory>
#include <string>
#include <vector>

#include "obsgw/identity_headers.hpp"
#include "obsgw/policy.hpp"
#include "obsgw/token_source.hpp"

namespace obsgw {

struct ApiKey {
  std::string id;       ///< names the key in logs and errors (never the key itself)
  std::string sha256;   ///< lower-case hex SHA-256 of the key
  std::string subject;  ///< Identity::subject (default: id)
  std::vector<std::string> tenants;  ///< Identity::allowed_tenants
  std::vector<std::string> scopes;
  std::vector<std::string> groups;
};

struct ApiKeyAuthenticatorOptions {
  std::vector<ApiKey> keys;
  std::vector<TokenSource> sources{TokenSource{TokenSource::Kind::header, "X-API-Key"}};
  bool forward_key = false;
  IdentityHeaders identity_headers;
  std::string realm = "obsgw";
};

/// Throws std::invalid_argument for a malformed hash, a duplicate, or a bad tenant id.
std::shared_ptr<const Authenticator> make_api_key_authenticator(ApiKeyAuthenticatorOptions options);

}  // namespace obsgw
