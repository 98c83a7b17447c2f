#pragma once
// What the browser sign-in's sealed cookies are sealed for (CookieSealer's purpose): the kind ("session", "login"),
// the cookie name and a digest of the route's identity rules (provider, issuer, client, subject claim, allow
// lists), so that a route or a config with other rules opens none of another's cookies. For tests that seal their
// own.

#include <string>
#include <string_view>

#include "obsgw/browser_login.hpp"

namespace obsgw::detail {

std::string sealed_cookie_purpose(const BrowserLoginOptions& options, std::string_view kind);

}  // namespace obsgw::detail
