#pragma once
/// @file
/// Where an authenticator looks for a client's credential.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "obsgw/http_message.hpp"

namespace obsgw {

struct TokenSource {
  enum class Kind {
    bearer,  ///< `Authorization: Bearer <token>` (RFC 6750)
    header,  ///< a named header holding the token alone
    cookie,  ///< a named cookie
    query,   ///< a named query parameter (opt-in: URLs end up in logs and browser history)
    basic,   ///< `Authorization: Basic`, the password being the token (for shippers that only speak basic auth)
  };
  Kind kind = Kind::bearer;
  std::string name;  ///< header, cookie or parameter name; unused for bearer and basic

  /// Parses "bearer", "basic", "header:X-Token", "cookie:session", "query:access_token".
  static std::optional<TokenSource> parse(std::string_view text);
};

/// A credential found in a request. Costs no copy when the token is read as sent (bearer, header, cookie): it
/// is then a view into the request's headers, valid until they change.
struct FoundToken {
  std::string_view raw;     ///< the token as it appears in the request (bearer, header, cookie)
  std::string decoded;      ///< the token after decoding (basic, query)
  bool is_decoded = false;
  std::string user;         ///< basic: the user name
  const TokenSource* source = nullptr;

  /// The token; empty when its place was present but malformed, ambiguous or not visible ASCII.
  std::string_view value() const noexcept { return is_decoded ? std::string_view(decoded) : raw; }
};

/// Looks for a token in `sources` order. When a source's place is present but malformed (say, `Authorization:
/// Bearer` with nothing after it) returns that place with an empty value, so the caller can say so. Tokens must
/// be visible ASCII (decoded ones are checked; header values cannot hold control bytes after parsing).
std::optional<FoundToken> find_token(const RequestHead& request, const std::vector<TokenSource>& sources);

/// Removes the credential `source` names from the request (the Authorization header, the header, the cookie
/// from Cookie, the parameter from the query), so that it is not forwarded.
void remove_token(RequestHead& request, const TokenSource& source);

}  // namespace obsgw
