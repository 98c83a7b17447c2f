#pragma once
/// @file
/// Passing who is calling to the upstream in headers. Client-sent copies of these headers are always removed
/// first, whether or not the request authenticates: an upstream never sees a spoofed identity.

#include <string>
#include <vector>

#include "obsgw/headers.hpp"
#include "obsgw/identity.hpp"

namespace obsgw {

struct IdentityHeaders {
  std::string subject = "X-Auth-Request-User";    ///< `sub`, or the API key's bound subject
  std::string email = "X-Auth-Request-Email";
  std::string groups = "X-Auth-Request-Groups";   ///< comma-separated
  std::string client_id;                          ///< empty: not sent
  std::string name;                               ///< the display name (browser sign-in); empty: not sent
  // An empty name means "not sent".

  /// Removes every configured header from `headers`.
  void strip(Headers& headers) const;
  /// Sets the configured headers from `identity` (values with control characters are dropped).
  void apply(const Identity& identity, Headers& headers) const;
  /// Throws std::invalid_argument when a name is not a valid header name or is managed by the proxy.
  void validate() const;
};

/// The configured (non-empty) header names.
std::vector<std::string> identity_header_names(const IdentityHeaders& headers);

}  // namespace obsgw
