#pragma once
// The 401 an authenticator answers with: RFC 6750's WWW-Authenticate challenge plus the JSON error body.

#include <string_view>

#include "obsgw/verdict.hpp"

namespace obsgw::auth {

enum class Challenge {
  none_given,     // no credential at all: the challenge carries no error (RFC 6750 3.1)
  invalid_token,  // a credential was given and refused
};

// `basic_too`: also offer `Basic realm=...` (the route accepts basic credentials).
Verdict unauthorized(std::string_view realm, Challenge kind, std::string_view code, std::string_view message,
                     bool basic_too = false);

}  // namespace obsgw::auth
