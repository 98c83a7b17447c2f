#pragma once
// What a provider's answer about an opaque token says: an RFC 7662 introspection answer (active, exp, token_type,
// iss, aud) or an OIDC userinfo answer (a subject), read into the identity the gateway passes on.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "obsgw/identity.hpp"
#include "obsgw/introspection_authenticator.hpp"

namespace obsgw::auth {

// The identity the answer `body` vouches for at `now` (Unix seconds), or null: the token is inactive, expired, not
// an access token, from another issuer or for another audience, or the answer is not a JSON object (`why` then
// says which, when there is more to say than "not active"). `expires_at` receives the token's exp (whole seconds,
// fractions floored, so that a cached answer never outlives the token) when the answer has one.
std::shared_ptr<const Identity> read_token_answer(std::string_view body, const IntrospectionAuthenticatorOptions& options,
                                                  std::int64_t now, std::int64_t& expires_at, std::string& why);

}  // namespace obsgw::auth
