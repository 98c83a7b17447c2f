#include "obsgw/browser_login.hpp"
#include "policies/browser_login_purpose.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

#include "auth/base64url.hpp"
#include "auth/claim_query.hpp"
#include "auth/jwt_verifier.hpp"
#include "auth/sealed_cookie.hpp"
#include "auth/token_cache.hpp"
#include "http/char_classes.hpp"
#include "http/form_encoding.hpp"
#include "net/http_client.hpp"
#include "obsgw/token_source.hpp"
#include "server/metrics.hpp"
#include "util/event_log.hpp"
#include "util/log_throttle.hpp"
#include "util/json_escape.hpp"

namespace obsgw {

namespace {
using Provider = BrowserLoginOptions::Provider;
using auth::VerifyOutcome;
using http::form_encode;

// Browsers keep at most 4096 bytes per cookie, name and attributes included.
constexpr std::size_t kMaxCookieValue = 3800;
constexpr std::size_t kMaxReturnTo = 512;  // login cookies pile up per tab: keep each small
constexpr auto kDiscoveryTtl = std::chrono::hours(1);

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_web_url(std::string_view url, bool allow_http) {
  return (starts_with(url, "https://") && url.size() > 8) || (allow_http && starts_with(url, "http://") && url.size() > 7);
}

// The path of an absolute URL ("https://host/a/b?x" gives "/a/b").
std::string url_path(std::string_view url) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  if (slash == std::string_view::npos) return "/";
  return std::string(url.substr(slash, url.find_first_of("?#", slash) - slash));
}

// A URL on this site only: "/..." but not "//host" or "/\host", which browsers read as another site.
bool is_local_path(std::string_view p) {
  if (p.empty() || p[0] != '/' || (p.size() > 1 && (p[1] == '/' || p[1] == '\\'))) return false;
  return std::all_of(p.begin(), p.end(), [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
}

// A provider's error code, cut to characters safe in a message and a log.
std::string safe_code(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64))
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') out.push_back(c);
  return out.empty() ? "unknown" : out;
}

bool same_secret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string first_claim(std::string_view json, std::string_view path) {
  auto values = auth::claim_values(json, path);
  return values.empty() ? std::string() : std::move(values.front());
}

// A page the browser navigates to, as opposed to a script's call (which gets 401 rather than a redirect).
bool is_navigation(const RequestHead& r) {
  if (r.method != "GET" && r.method != "HEAD") return false;
  // Iframes navigate too, but a dashboard's panels must not each start a sign-in (and a login cookie).
  if (auto dest = r.headers.get("Sec-Fetch-Dest"); dest && !iequals(*dest, "document")) return false;
  if (auto mode = r.headers.get("Sec-Fetch-Mode")) return iequals(*mode, "navigate");
  auto accept = r.headers.get("Accept");
  return accept && accept->find("text/html") != std::string_view::npos;
}

struct Endpoints {
  std::string authorization, token, userinfo;
};

// Who signed in, as the provider described them.
struct User {
  std::string sub, subject, email, name, login, issuer;
  bool email_verified = false;
  std::vector<std::string> groups;
};

std::string session_json(const User& u) {
  std::string out = "{\"sub\":";
  util::append_json_string(out, u.sub);
  for (auto [key, value] : {std::pair<const char*, const std::string*>{"user", &u.subject}, {"email", &u.email},
                            {"name", &u.name}, {"login", &u.login}, {"iss", &u.issuer}}) {
    if (value->empty()) continue;
    out += fmt::format(",\"{}\":", key);
    util::append_json_string(out, *value);
  }
  out += ",\"email_verified\":";
  out += u.email_verified ? "true" : "false";
  out += ",\"groups\":[";
  for (std::size_t i = 0; i < u.groups.size(); ++i) {
    if (i) out += ',';
    util::append_json_string(out, u.groups[i]);
  }
  out += "]}";
  return out;
}

std::shared_ptr<const Identity> identity_from_session(std::string json) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json).get(doc) != simdjson::SUCCESS || !doc.is_object()) return nullptr;
  auto text = [&](const char* key) {
    std::string_view v;
    return doc[key].get_string().get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
  };
  auto id = std::make_shared<Identity>();
  id->method = "sso";
  id->subject = text("user");
  if (id->subject.empty()) id->subject = text("sub");
  id->issuer = text("iss");
  // An address the provider did not verify is the user's say-so (anyone may type admin@ into a profile): it is
  // never passed on, nor matched by allow lists (which read email_verified themselves).
  bool verified = false;
  if (doc["email_verified"].get_bool().get(verified) == simdjson::SUCCESS && verified) id->email = text("email");
  id->name = text("name");
  simdjson::dom::array groups;
  if (doc["groups"].get_array().get(groups) == simdjson::SUCCESS)
    for (auto g : groups) {
      std::string_view v;
      if (g.get_string().get(v) == simdjson::SUCCESS) id->groups.emplace_back(v);
    }
  if (id->subject.empty()) return nullptr;
  id->claims_json = std::move(json);
  return id;
}

class BrowserLoginAuthenticator final : public Authenticator {
 public:
  explicit BrowserLoginAuthenticator(BrowserLoginOptions o)
      : options_(std::move(o)),
        sealer_(options_.cookie_secrets),
        cache_owner_(std::make_shared<char>()),
        // The cookie's name is part of what is sealed: two routes signing in with the same secret (one of them
        // admitting fewer users) cannot take each other's sessions.
        session_purpose_(detail::sealed_cookie_purpose(options_, "session")),
        login_purpose_(detail::sealed_cookie_purpose(options_, "login")) {
    const bool oidc = options_.provider == Provider::oidc;
    if (options_.client_id.empty()) throw std::invalid_argument("client_id: required");
    if (!is_web_url(options_.redirect_url, true))
      throw std::invalid_argument(fmt::format("redirect_url: \"{}\" must be an absolute http(s):// URL", options_.redirect_url));
    callback_path_ = url_path(options_.redirect_url);
    if (oidc && !is_web_url(options_.issuer, options_.allow_http))
      throw std::invalid_argument(fmt::format("issuer: \"{}\" must be an https:// URL", options_.issuer));
    if (!http::is_token(options_.cookie_name)) throw std::invalid_argument("cookie_name: not a valid cookie name");
    if (!std::all_of(options_.cookie_domain.begin(), options_.cookie_domain.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; }))
      throw std::invalid_argument("cookie_domain: not a host name");
    if (options_.cookie_secure && starts_with(options_.redirect_url, "http://"))
      throw std::invalid_argument("redirect_url: an http:// callback cannot receive Secure cookies (set cookie_secure false "
                                  "for plain-http development)");
    if (!is_local_path(options_.logout_path) || options_.logout_path == callback_path_)
      throw std::invalid_argument("logout_path: must be a path (\"/...\") other than the callback's");
    if (!is_local_path(options_.post_logout_redirect) && !is_web_url(options_.post_logout_redirect, true))
      throw std::invalid_argument("post_logout_redirect: must be a path or an http(s):// URL");
    if (options_.session_ttl < std::chrono::minutes(1)) throw std::invalid_argument("session_ttl: at least 60 s");
    if (options_.login_ttl < std::chrono::seconds(30)) throw std::invalid_argument("login_ttl: at least 30 s");
    if (options_.scopes.empty())
      options_.scopes = oidc ? std::vector<std::string>{"openid", "email", "profile"}
                             : std::vector<std::string>{"read:user", "user:email"};
    if (oidc && std::find(options_.scopes.begin(), options_.scopes.end(), "openid") == options_.scopes.end())
      throw std::invalid_argument("scopes: must include \"openid\" (an OpenID provider sends no ID token without it)");
    for (auto& d : options_.allowed_email_domains) {
      if (!d.empty() && d.front() == '@') d.erase(0, 1);
      std::transform(d.begin(), d.end(), d.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
    options_.identity_headers.validate();
    for (const auto* url : {&options_.authorization_endpoint, &options_.token_endpoint, &options_.userinfo_endpoint,
                            &options_.jwks_uri, &options_.github_api_url})
      if (!url->empty() && !is_web_url(*url, options_.allow_http))
        throw std::invalid_argument(fmt::format("\"{}\" must be an https:// URL (or set allow_http)", *url));
    while (!options_.github_api_url.empty() && options_.github_api_url.back() == '/') options_.github_api_url.pop_back();
    if (!oidc) {
      if (options_.authorization_endpoint.empty())
        options_.authorization_endpoint = "https://github.com/login/oauth/authorize";
      if (options_.token_endpoint.empty()) options_.token_endpoint = "https://github.com/login/oauth/access_token";
    }
    if (!options_.authorization_endpoint.empty() && !options_.token_endpoint.empty())
      fixed_endpoints_ = std::make_shared<const Endpoints>(
          Endpoints{options_.authorization_endpoint, options_.token_endpoint, options_.userinfo_endpoint});
    session_sources_.push_back(TokenSource{TokenSource::Kind::cookie, options_.cookie_name});
    client_ = std::make_shared<net::HttpClient>(options_.ca_file);  // throws for an unreadable CA file
    if (oidc) {
      JwtProviderOptions p;
      p.issuer = options_.issuer;
      if (options_.jwks_uri.empty()) p.discovery = true;
      else p.jwks_uri = options_.jwks_uri;
      p.ca_file = options_.ca_file;
      p.allow_http = options_.allow_http;
      p.fetch_timeout = options_.timeout;
      p.cold_start_wait = options_.timeout;
      p.audiences = {options_.client_id};
      p.leeway = options_.leeway;
      p.groups_claim = options_.groups_claim;
      verifier_ = std::make_unique<auth::JwtVerifier>(std::vector<JwtProviderOptions>{p}, 16384);
    }
  }

  std::string_view name() const noexcept override { return "browser_login"; }
  std::vector<std::string> owned_request_headers() const override { return identity_header_names(options_.identity_headers); }

  Verdict on_request(Exchange& ex) const override {
    options_.identity_headers.strip(ex.request().headers);
    const std::string& path = ex.client_path();
    if (path == callback_path_) return Verdict::suspend();
    if (path == options_.logout_path) return sign_out(ex);
    auto found = find_token(ex.request(), session_sources_);
    if (found && !found->value().empty()) {
      if (auto identity = open_session(found->value())) {
        accept(ex, std::move(identity));
        return Verdict::proceed();
      }
      // Expired, sealed with a retired secret, or forged: sign in again.
    }
    // Several cookies of this name count as none: taking the first that opens would let a cookie planted for a
    // parent domain (by a sibling site) choose whose session this browser works in.
    if (!is_navigation(ex.request()))
      return Verdict::reject(401, "login_required", "sign in first: this route needs a browser session");
    if (auto endpoints = known_endpoints()) return start_login(ex, *endpoints);
    return Verdict::suspend();  // the provider's endpoints are to be discovered first
  }

  asio::awaitable<Verdict> on_request_async(Exchange& ex) const override {
    if (ex.client_path() == callback_path_) co_return co_await finish_login(ex);
    std::string error;
    auto endpoints = co_await discovered_endpoints(error);
    if (!endpoints) co_return unavailable();
    co_return start_login(ex, *endpoints);
  }

 private:
  // The identity a session cookie holds: from this thread's cache, or opened (and then cached). Null when the value
  // does not open.
  std::shared_ptr<const Identity> open_session(std::string_view value) const {
    const auto now = unix_now();
    auto* cache = options_.cache_entries ? &auth::thread_token_cache(cache_owner_, options_.cache_entries) : nullptr;
    if (const auto* e = cache ? cache->find(value, now) : nullptr) return e->identity;
    std::int64_t expires_at = 0;
    auto plain = sealer_.open(value, session_purpose_, now, &expires_at);
    auto identity = plain ? identity_from_session(std::move(*plain)) : nullptr;
    if (identity && cache) cache->insert(value, {identity, expires_at, 0, 0}, now);
    return identity;
  }

  // --- cookies ---

  std::string cookie(std::string_view name, std::string_view value, std::string_view path, std::int64_t max_age) const {
    return fmt::format("{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{}{}{}", name, value, path, max_age,
                       options_.cookie_secure ? "; Secure" : "", options_.cookie_domain.empty() ? "" : "; Domain=",
                       options_.cookie_domain);
  }
  // One login cookie per login in progress, named after its state, so that several tabs can sign in at once.
  std::string login_cookie_name(std::string_view state) const {
    return fmt::format("{}_login_{}", options_.cookie_name, state.substr(0, 12));
  }
  std::string clear_login_cookie(std::string_view state) const {
    return cookie(login_cookie_name(state), "", callback_path_, 0);
  }

  void accept(Exchange& ex, std::shared_ptr<const Identity> identity) const {
    options_.identity_headers.apply(*identity, ex.request().headers);
    remove_token(ex.request(), session_sources_.front());  // the upstream never sees the session
    ex.identity = std::move(identity);
  }

  // --- the login redirect ---

  Verdict start_login(const Exchange& ex, const Endpoints& endpoints) const {
    const auto& req = ex.request();
    std::string return_to = ex.client_path();
    if (!req.query.empty()) return_to += "?" + req.query;
    if (!is_local_path(return_to) || return_to.size() > kMaxReturnTo) return_to = "/";
    const std::string state = auth::random_token(24), nonce = auth::random_token(24), verifier = auth::random_token(32);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
    const std::string challenge = auth::base64url_encode({reinterpret_cast<const char*>(digest), sizeof digest});

    std::string login = "{\"state\":" + util::json_string(state) + ",\"nonce\":" + util::json_string(nonce) +
                        ",\"verifier\":" + util::json_string(verifier) + ",\"return_to\":" + util::json_string(return_to) + "}";
    const auto sealed = sealer_.seal(login, login_purpose_, unix_now() + options_.login_ttl.count());

    std::string scope;
    for (const auto& s : options_.scopes) scope += (scope.empty() ? "" : " ") + s;
    std::string location = endpoints.authorization;
    location += location.find('?') == std::string::npos ? '?' : '&';
    location += "response_type=code&client_id=" + form_encode(options_.client_id) +
                "&redirect_uri=" + form_encode(options_.redirect_url) + "&scope=" + form_encode(scope) +
                "&state=" + state + "&code_challenge=" + challenge + "&code_challenge_method=S256";
    if (options_.provider == Provider::oidc) location += "&nonce=" + nonce;
    for (const auto& [k, v] : options_.authorization_params) location += "&" + form_encode(k) + "=" + form_encode(v);
    return Verdict::reject(302, "login_required", "sign in at the identity provider first")
        .with_header("Location", location)
        .with_header("Set-Cookie", cookie(login_cookie_name(state), sealed, callback_path_, options_.login_ttl.count()));
  }

  Verdict sign_out(const Exchange& ex) const {
    const bool post = ex.request().method == "POST";
    if (!post && ex.request().method != "GET" && ex.request().method != "HEAD")
      return Verdict::reject(405, "method_not_allowed", "sign out with GET or POST").with_header("Allow", "GET, HEAD, POST");
    count("signed_out");
    return Verdict::reject(post ? 303 : 302, "signed_out", "signed out")
        .with_header("Location", options_.post_logout_redirect)
        .with_header("Set-Cookie", cookie(options_.cookie_name, "", "/", 0));
  }

  // --- the callback ---

  asio::awaitable<Verdict> finish_login(Exchange& ex) const {
    const std::string& query = ex.request().query;
    bool repeated_state = false, repeated_code = false;
    auto state = http::query_value(query, "state", &repeated_state);
    const bool state_ok = state && !repeated_state && state->size() >= 16 && state->size() <= 128 &&
                          std::all_of(state->begin(), state->end(), [](char c) { return http::is_token_char(c); });
    if (auto error = http::query_value(query, "error")) {
      count("refused");
      auto v = refuse(403, "login_refused", fmt::format("the identity provider refused the sign-in ({})", safe_code(*error)));
      if (state_ok) v.with_header("Set-Cookie", clear_login_cookie(*state));
      co_return v;
    }
    auto code = http::query_value(query, "code", &repeated_code);
    if (!state_ok || !code || repeated_code || code->empty() || code->size() > 4096) {
      count("invalid_callback");
      co_return refuse(400, "invalid_callback", "the sign-in callback needs one state and one code parameter");
    }
    const std::string cookie_name = login_cookie_name(*state);
    const std::vector<TokenSource> login_source{TokenSource{TokenSource::Kind::cookie, cookie_name}};
    auto found = find_token(ex.request(), login_source);
    std::optional<std::string> login;
    if (found && !found->value().empty()) login = sealer_.open(found->value(), login_purpose_, unix_now());
    if (!login) {
      count("login_expired");
      co_return refuse(400, "login_expired",
                       fmt::format("no sign-in in progress matches this callback (it took over {} s, or the browser "
                                   "refused cookies): open the page again",
                                   options_.login_ttl.count()));
    }
    if (!same_secret(first_claim(*login, "state"), *state)) {
      count("state_mismatch");
      co_return refuse(400, "state_mismatch", "the callback's state does not match the sign-in in progress");
    }
    const std::string clear = clear_login_cookie(*state);
    std::string error;
    auto endpoints = co_await discovered_endpoints(error);
    if (!endpoints) co_return unavailable().with_header("Set-Cookie", clear);

    // The code for tokens (RFC 6749 4.1.3, with the PKCE verifier of RFC 7636 4.5).
    net::HttpClientRequest req;
    req.method = "POST";
    req.url = endpoints->token;
    req.timeout = options_.timeout;
    req.max_body = 256 * 1024;
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.headers.push_back({"Accept", "application/json"});
    req.body = "grant_type=authorization_code&code=" + form_encode(*code) +
               "&redirect_uri=" + form_encode(options_.redirect_url) +
               "&code_verifier=" + form_encode(first_claim(*login, "verifier"));
    if (options_.provider == Provider::github || options_.client_secret.empty())
      req.body += "&client_id=" + form_encode(options_.client_id);  // GitHub takes the credentials in the form
    if (options_.provider == Provider::github && !options_.client_secret.empty())
      req.body += "&client_secret=" + form_encode(options_.client_secret);
    else if (!options_.client_secret.empty())
      req.headers.push_back({"Authorization", http::client_basic_authorization(options_.client_id, options_.client_secret)});
    auto res = co_await client_->fetch(req, error);
    const std::string provider_error = res.status ? first_claim(res.body, "error") : std::string();
    const std::string access_token = res.status == 200 ? first_claim(res.body, "access_token") : std::string();
    if (!error.empty() || res.status != 200 || !provider_error.empty() || access_token.empty()) {
      count("token_exchange_failed");
      log_failure("token endpoint", error.empty() ? fmt::format("status {}, error {}", res.status, safe_code(provider_error)) : error);
      if (error.empty() && res.status < 500 && !provider_error.empty())  // the provider refused this code
        co_return refuse(401, "login_failed",
                         fmt::format("the identity provider did not accept the sign-in code ({}): open the page again",
                                     safe_code(provider_error)))
            .with_header("Set-Cookie", clear);
      co_return unavailable().with_header("Set-Cookie", clear);
    }

    User user;
    // Not a conditional expression over two co_awaits: GCC 12 mishandles the temporaries of such a coroutine
    // (a garbled Verdict came out of the GitHub branch).
    std::optional<Verdict> failed;
    if (options_.provider == Provider::oidc)
      failed = co_await oidc_user(first_claim(res.body, "id_token"), access_token, *endpoints, *login, user);
    else
      failed = co_await github_user(access_token, user);
    if (failed) co_return std::move(failed->with_header("Set-Cookie", clear));
    if (std::string why; !allowed(user, why)) {
      count("denied");
      log_sign_in(user, false, why);
      co_return refuse(403, "user_not_allowed", why).with_header("Set-Cookie", clear);
    }
    const auto session = sealer_.seal(session_json(user), session_purpose_, unix_now() + options_.session_ttl.count());
    if (session.size() > kMaxCookieValue) {
      count("session_too_large");
      co_return refuse(500, "session_too_large",
                       fmt::format("the session of {} is {} bytes, more than a browser keeps in a cookie ({} groups): "
                                   "narrow groups_claim",
                                   user.subject, session.size(), user.groups.size()))
          .with_header("Set-Cookie", clear);
    }
    count("success");
    log_sign_in(user, true, "");
    std::string return_to = first_claim(*login, "return_to");
    if (!is_local_path(return_to)) return_to = "/";
    co_return Verdict::reject(302, "signed_in", "signed in")
        .with_header("Location", return_to)
        .with_header("Set-Cookie", cookie(options_.cookie_name, session, "/", options_.session_ttl.count()))
        .with_header("Set-Cookie", clear);
  }

  // The user from a verified ID token (OpenID Connect Core 3.1.3.7), completed from userinfo when it lacks the
  // email (many providers put only `sub` in ID tokens of the code flow). nullopt when all is well.
  asio::awaitable<std::optional<Verdict>> oidc_user(std::string id_token, std::string access_token,
                                                    const Endpoints& endpoints, const std::string& login, User& user) const {
    if (id_token.empty()) {
      count("no_id_token");
      log_failure("token endpoint", "the answer has no id_token (is the openid scope granted?)");
      co_return refuse(502, "login_failed", "the identity provider sent no ID token");
    }
    auto outcome = co_await auth::verify_waiting_for_keys(*verifier_, id_token);
    if (outcome.kind == VerifyOutcome::Kind::need_keys) co_return unavailable();
    if (outcome.kind != VerifyOutcome::Kind::verified) {
      count("invalid_id_token");
      log_failure("id token", outcome.message);
      co_return refuse(401, "invalid_id_token", fmt::format("the ID token was refused: {}", outcome.message));
    }
    const std::string& claims = outcome.identity->claims_json;
    if (!same_secret(first_claim(claims, "nonce"), first_claim(login, "nonce"))) {
      count("invalid_id_token");
      co_return refuse(401, "invalid_id_token", "the ID token's nonce does not match the sign-in in progress");
    }
    // With several audiences, the token must say it was issued to this client (OIDC Core 3.1.3.7, item 4-5).
    auto audiences = auth::claim_values(claims, "aud");
    if (audiences.size() > 1 && first_claim(claims, "azp") != options_.client_id) {
      count("invalid_id_token");
      co_return refuse(401, "invalid_id_token", "the ID token names several audiences but was not issued to this client");
    }
    auto read = [&](std::string_view json) {
      if (user.email.empty()) {
        user.email = first_claim(json, "email");
        user.email_verified = first_claim(json, "email_verified") == "true";
      }
      if (user.name.empty()) user.name = first_claim(json, "name");
      if (user.subject.empty()) user.subject = first_claim(json, options_.subject_claim);
      if (user.groups.empty()) user.groups = auth::claim_values(json, options_.groups_claim);
    };
    user.sub = outcome.identity->subject;
    user.issuer = options_.issuer;
    read(claims);
    if ((user.email.empty() || user.subject.empty()) && !endpoints.userinfo.empty()) {
      net::HttpClientRequest req;
      req.url = endpoints.userinfo;
      req.timeout = options_.timeout;
      req.max_body = 256 * 1024;
      req.headers.push_back({"Authorization", "Bearer " + access_token});
      req.headers.push_back({"Accept", "application/json"});
      std::string error;
      auto res = co_await client_->fetch(req, error);
      if (!error.empty() || res.status != 200) {
        count("userinfo_failed");
        log_failure("userinfo", error.empty() ? fmt::format("status {}", res.status) : error);
        co_return unavailable();
      }
      // OIDC Core 5.3.2: a userinfo answer for another subject must not be used.
      if (first_claim(res.body, "sub") != user.sub) {
        count("userinfo_failed");
        co_return refuse(502, "login_failed", "the provider's userinfo answer is about another subject");
      }
      read(res.body);
    }
    if (user.subject.empty()) user.subject = user.sub;
    if (options_.subject_claim == "email" && !user.email_verified) {
      count("denied");
      co_return refuse(403, "user_not_allowed", "the provider has not verified this account's email address");
    }
    co_return std::nullopt;
  }

  // GitHub has no ID token: the user, their verified emails and (with read:org) their organisations come from its
  // REST API with the access token.
  asio::awaitable<std::optional<Verdict>> github_user(std::string access_token, User& user) const {
    std::string error;
    auto profile = co_await github_get("/user", access_token, error);
    if (!error.empty() || profile.status != 200) {
      count("userinfo_failed");
      log_failure("github /user", error.empty() ? fmt::format("status {}", profile.status) : error);
      co_return unavailable();
    }
    user.login = first_claim(profile.body, "login");
    user.sub = first_claim(profile.body, "id");
    user.name = first_claim(profile.body, "name");
    user.subject = user.login;
    user.issuer = options_.github_api_url;
    if (user.login.empty()) {
      count("userinfo_failed");
      co_return refuse(502, "login_failed", "GitHub's /user answer has no login");
    }
    // The profile's public email is whatever the user chose to show; /user/emails says which are verified.
    simdjson::dom::parser parser;
    simdjson::dom::array list;
    // A scope the user withheld (GitHub lets them untick it) is an answer: no verified email, no groups. GitHub
    // failing is not, and must not sign anyone in with less than they have.
    auto github_failed = [&](const net::HttpClientResponse& r, const char* what) {
      if (error.empty() && r.status != 0 && r.status < 500 && r.status != 429) return false;
      count("userinfo_failed");
      log_failure(what, error.empty() ? fmt::format("status {}", r.status) : error);
      return true;
    };
    auto emails = co_await github_get("/user/emails", access_token, error);
    if (github_failed(emails, "github /user/emails")) co_return unavailable();
    if (emails.status == 200 && parser.parse(emails.body).get_array().get(list) == simdjson::SUCCESS) {
      for (auto e : list) {
        std::string_view address;
        if (e["email"].get_string().get(address) != simdjson::SUCCESS) continue;
        auto is_true = [&](const char* key) {
          bool v = false;
          return e[key].get_bool().get(v) == simdjson::SUCCESS && v;
        };
        if (is_true("primary") && is_true("verified")) {
          user.email = std::string(address);
          user.email_verified = true;
        }
      }
    }
    if (user.email.empty()) user.email = first_claim(profile.body, "email");
    if (std::find(options_.scopes.begin(), options_.scopes.end(), "read:org") != options_.scopes.end()) {
      auto orgs = co_await github_get("/user/orgs?per_page=100", access_token, error);
      if (github_failed(orgs, "github /user/orgs")) co_return unavailable();
      if (orgs.status == 200 && parser.parse(orgs.body).get_array().get(list) == simdjson::SUCCESS)
        for (auto org : list) {
          std::string_view name;
          if (org["login"].get_string().get(name) == simdjson::SUCCESS) user.groups.emplace_back(name);
        }
    }
    co_return std::nullopt;
  }

  asio::awaitable<net::HttpClientResponse> github_get(std::string path, const std::string& token, std::string& error) const {
    net::HttpClientRequest req;
    req.url = options_.github_api_url + path;
    req.timeout = options_.timeout;
    req.max_body = 256 * 1024;
    req.headers.push_back({"Authorization", "Bearer " + token});
    req.headers.push_back({"Accept", "application/vnd.github+json"});
    req.headers.push_back({"User-Agent", "obsgw"});  // GitHub's API refuses requests without one
    error.clear();
    co_return co_await client_->fetch(req, error);
  }

  bool allowed(const User& user, std::string& why) const {
    if (options_.allowed_email_domains.empty() && options_.allowed_users.empty()) return true;
    for (const auto& u : options_.allowed_users)
      if ((!user.email.empty() && user.email_verified && iequals(u, user.email)) || (!user.login.empty() && iequals(u, user.login)))
        return true;
    if (!options_.allowed_email_domains.empty() && user.email_verified) {
      auto at = user.email.rfind('@');
      std::string domain = at == std::string::npos ? std::string() : user.email.substr(at + 1);
      for (const auto& d : options_.allowed_email_domains)
        if (iequals(d, domain)) return true;
    }
    why = user.email.empty() || !user.email_verified
              ? fmt::format("{} has no verified email address that this site admits", user.subject)
              : fmt::format("{} is not allowed to sign in to this site", user.email);
    return false;
  }

  // --- the provider's endpoints ---

  std::shared_ptr<const Endpoints> known_endpoints() const {
    if (fixed_endpoints_) return fixed_endpoints_;
    std::lock_guard lock(endpoints_mutex_);
    if (discovered_ && std::chrono::steady_clock::now() - discovered_at_ < kDiscoveryTtl) return discovered_;
    return nullptr;
  }

  // OIDC discovery (OpenID Connect Discovery 1.0, section 4), at the first sign-in and then hourly; the last good
  // answer keeps serving while the provider is down.
  asio::awaitable<std::shared_ptr<const Endpoints>> discovered_endpoints(std::string& error) const {
    if (auto known = known_endpoints()) co_return known;
    std::string url = options_.issuer;
    while (!url.empty() && url.back() == '/') url.pop_back();
    net::HttpClientRequest req;
    req.url = url + "/.well-known/openid-configuration";
    req.timeout = options_.timeout;
    req.max_body = 256 * 1024;
    auto res = co_await client_->fetch(req, error);
    auto endpoints = std::make_shared<Endpoints>();
    if (error.empty() && res.status != 200) error = fmt::format("{} answered {}", req.url, res.status);
    if (error.empty() && first_claim(res.body, "issuer") != options_.issuer)
      error = fmt::format("{} names another issuer than \"{}\"", req.url, options_.issuer);
    if (error.empty()) {
      endpoints->authorization = options_.authorization_endpoint.empty() ? first_claim(res.body, "authorization_endpoint")
                                                                         : options_.authorization_endpoint;
      endpoints->token = options_.token_endpoint.empty() ? first_claim(res.body, "token_endpoint") : options_.token_endpoint;
      endpoints->userinfo = options_.userinfo_endpoint.empty() ? first_claim(res.body, "userinfo_endpoint")
                                                               : options_.userinfo_endpoint;
      for (const auto* u : {&endpoints->authorization, &endpoints->token})
        if (!is_web_url(*u, options_.allow_http)) error = fmt::format("{} gives no usable endpoint \"{}\"", req.url, *u);
      if (!endpoints->userinfo.empty() && !is_web_url(endpoints->userinfo, options_.allow_http)) endpoints->userinfo.clear();
    }
    std::lock_guard lock(endpoints_mutex_);
    if (!error.empty()) {
      log_failure("discovery", error);
      co_return discovered_;  // stale but known, or null
    }
    discovered_ = std::move(endpoints);
    discovered_at_ = std::chrono::steady_clock::now();
    co_return discovered_;
  }

  // --- answers, counters and logs ---

  static Verdict refuse(int status, std::string_view code, std::string_view message) {
    return Verdict::reject(status, code, message);  // the gateway's answers all carry Cache-Control: no-store
  }
  // The cause is in the log (log_failure), never in the answer.
  static Verdict unavailable() {
    return refuse(503, "identity_provider_unavailable", "identity provider unavailable: sign-in cannot complete now")
        .with_header("Retry-After", "5");
  }
  static void count(const char* result) { detail::Metrics::instance().browser_logins.add(result); }

  void log_sign_in(const User& user, bool admitted, const std::string& why) const {
    if (auto logger = util::event_logger(); logger && logger->enabled(LogLevel::info))
      logger->log(admitted ? LogLevel::info : LogLevel::warn, admitted ? "browser sign-in" : "browser sign-in refused",
                  {{"user", user.subject}, {"email", user.email}, {"issuer", user.issuer}, {"reason", why}});
  }

  // A provider's failure in the log (at most one line a second), never in an answer.
  void log_failure(std::string_view step, const std::string& detail) const {
    if (!failure_log_.allow()) return;
    if (auto logger = util::event_logger(); logger && logger->enabled(LogLevel::warn))
      logger->log(LogLevel::warn, "browser sign-in failed", {{"step", step}, {"error", detail}});
  }

  BrowserLoginOptions options_;
  auth::CookieSealer sealer_;
  std::shared_ptr<void> cache_owner_;
  std::string session_purpose_, login_purpose_;
  std::string callback_path_;
  std::vector<TokenSource> session_sources_;
  std::shared_ptr<net::HttpClient> client_;
  std::unique_ptr<auth::JwtVerifier> verifier_;  // oidc only
  std::shared_ptr<const Endpoints> fixed_endpoints_;
  mutable std::mutex endpoints_mutex_;  // sign-ins only, never a request with a session
  mutable std::shared_ptr<const Endpoints> discovered_;
  mutable std::chrono::steady_clock::time_point discovered_at_;
  mutable util::LogThrottle failure_log_;
};
}  // namespace

namespace detail {
std::string sealed_cookie_purpose(const BrowserLoginOptions& o, std::string_view kind) {
  std::string rules = fmt::format("{}\n{}\n{}\n{}\n{}\n", static_cast<int>(o.provider), o.issuer, o.github_api_url,
                                  o.client_id, o.subject_claim);
  for (const auto* list : {&o.allowed_email_domains, &o.allowed_users})
    for (const auto& v : *list) rules += v + "\n";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(rules.data()), rules.size(), digest);
  return fmt::format("obsgw {} {} {}", kind, o.cookie_name,
                     auth::base64url_encode({reinterpret_cast<const char*>(digest), 16}));
}
}  // namespace detail

std::shared_ptr<const Authenticator> make_browser_login_authenticator(BrowserLoginOptions options) {
  return std::make_shared<BrowserLoginAuthenticator>(std::move(options));
}

}  // namespace obsgw
