#pragma once
/// @file
/// Single sign-on for browsers: people reach an app (Grafana, a dashboard, an internal tool) through the gateway
/// after logging in at an OpenID provider (Google, Keycloak, Okta, Entra ID, ...) or at GitHub, and the app
/// learns who they are from identity headers (Grafana's auth proxy, for one).
///
/// The flow is OAuth 2.0 authorization code with PKCE (RFC 7636), state and, for OpenID providers, a nonce:
/// - a browser navigation without a session is redirected (302) to the provider; the login in progress (state,
///   nonce, PKCE verifier, the page asked for) lives in a short-lived sealed cookie, not in the gateway;
/// - the provider sends the browser back to `redirect_url`, whose path the authenticator answers itself: the
///   state must match, the code is exchanged at the token endpoint, the ID token verified (signature by the
///   issuer's published keys, iss, aud, exp, nonce), the user read from its claims (and from userinfo when the ID
///   token lacks them; for GitHub, from its REST API), and a sealed session cookie is set before the browser
///   returns to the page it asked for (a relative URL on this site only);
/// - later requests carry the session cookie: opening it costs an AES-GCM decryption, and a session seen before
///   on this io thread costs a cache lookup. The session cookie is removed from the forwarded Cookie header.
/// Requests that are not navigations (API calls, XHR) get 401 instead of a redirect. `logout_path` clears the
/// session. Nothing is stored server-side, so every gateway of a fleet sharing the cookie secret serves every
/// session.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "obsgw/identity_headers.hpp"
#include "obsgw/policy.hpp"

namespace obsgw {

struct BrowserLoginOptions {
  enum class Provider {
    oidc,    ///< an OpenID Connect provider: endpoints by discovery from `issuer` unless given
    github,  ///< GitHub (or GitHub Enterprise) OAuth apps: no ID token, the user comes from the REST API
  };
  Provider provider = Provider::oidc;

  std::string issuer;                  ///< oidc: required; ID tokens' `iss` must equal it
  std::string authorization_endpoint;  ///< empty: discovered (oidc) or GitHub's
  std::string token_endpoint;          ///< empty: discovered (oidc) or GitHub's
  std::string userinfo_endpoint;       ///< oidc: empty: discovered (asked only when the ID token lacks email)
  std::string jwks_uri;                ///< oidc: empty: discovered
  std::string github_api_url = "https://api.github.com";  ///< github: REST API base (GitHub Enterprise: .../api/v3)

  std::string client_id;
  std::string client_secret;  ///< sent with HTTP Basic (client_secret_basic); GitHub: in the form
  /// Absolute URL the provider sends the browser back to, registered at the provider; its path is answered by
  /// this authenticator, so the route must match it.
  std::string redirect_url;
  std::vector<std::string> scopes;  ///< empty: "openid email profile" (oidc) or "read:user user:email" (github)
  /// Extra query parameters for the authorization request (Google's `hd`, `prompt`, ...).
  std::vector<std::pair<std::string, std::string>> authorization_params;

  /// Secrets of the sealed cookies, at least 32 bytes each: the first seals, all open (rotation).
  std::vector<std::string> cookie_secrets;
  std::string cookie_name = "obsgw_session";
  std::string cookie_domain;  ///< empty: host-only cookies (recommended)
  bool cookie_secure = true;  ///< the Secure attribute; turn off only for plain-http development
  std::chrono::seconds session_ttl{std::chrono::hours(12)};
  std::chrono::seconds login_ttl{600};  ///< how long a started login may take

  std::string logout_path = "/oauth2/sign_out";  ///< GET or POST here clears the session
  std::string post_logout_redirect = "/";        ///< relative, or an absolute URL (a provider's logout page)

  /// Who the user is: the claim (oidc) naming the subject passed on; GitHub's is always the login name.
  std::string subject_claim = "sub";
  std::string groups_claim = "groups";  ///< oidc: dotted path; github: organisation logins (needs read:org)
  /// When not empty, only users whose verified email is in one of these domains may sign in (403 otherwise).
  std::vector<std::string> allowed_email_domains;
  /// When not empty, only these users may sign in: email addresses or (GitHub) login names.
  std::vector<std::string> allowed_users;

  std::string ca_file;      ///< for the provider's https endpoints; empty: the system's trust store
  bool allow_http = false;  ///< permit http:// provider URLs (tests, loopback setups only)
  std::chrono::milliseconds timeout{5000};  ///< each call to the provider
  std::chrono::seconds leeway{60};          ///< ID token clock skew

  IdentityHeaders identity_headers;
  std::size_t cache_entries = 10000;  ///< opened sessions cached per io thread
};

/// Throws std::invalid_argument naming the problem (a missing client_id, a short secret, a relative
/// redirect_url, ...). OpenID providers' keys and endpoints start loading at once, in the background.
std::shared_ptr<const Authenticator> make_browser_login_authenticator(BrowserLoginOptions options);

}  // namespace obsgw
