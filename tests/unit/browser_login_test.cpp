// The browser sign-in authenticator's own decisions, without a provider: the redirect to the provider and the
// login cookie it sets, 401 for calls that are not navigations, sessions opened from sealed cookies (and refused
// when edited, expired or sealed with another secret), sign-out, and callbacks that cannot match a sign-in.
// The code exchange with a real OpenID provider is tests/integration/test_browser_login.py.

#include "obsgw/browser_login.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "auth/sealed_cookie.hpp"
#include "http/form_encoding.hpp"
#include "policies/browser_login_purpose.hpp"

namespace obsgw {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kSecret(32, 's');

BrowserLoginOptions github_options() {
  BrowserLoginOptions o;
  o.provider = BrowserLoginOptions::Provider::github;
  o.authorization_endpoint = "https://idp.example/authorize?tenant=t1";
  o.token_endpoint = "https://idp.example/token";
  o.client_id = "web client";
  o.client_secret = "secret";
  o.redirect_url = "https://grafana.example/oauth2/callback";
  o.cookie_secrets = {kSecret};
  o.identity_headers.subject = "X-WEBAUTH-USER";
  o.identity_headers.name = "X-WEBAUTH-NAME";
  return o;
}

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Exchange request(std::string method, std::string path, std::string query = "", bool browser = true) {
  RequestHead head;
  head.method = std::move(method);
  head.path = std::move(path);
  head.query = std::move(query);
  if (browser) head.headers.add("Accept", "text/html,application/xhtml+xml");
  else head.headers.add("Accept", "application/json");
  return Exchange(std::move(head), ConnectionInfo{});
}

std::vector<std::string> header_values(const Rejection& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& h : r.headers)
    if (iequals(h.name, name)) out.push_back(h.value);
  return out;
}

// The value of `name=...` in a Set-Cookie line.
std::string cookie_value(const std::string& set_cookie) {
  auto eq = set_cookie.find('='), semi = set_cookie.find(';');
  return set_cookie.substr(eq + 1, semi - eq - 1);
}

Verdict run_async(const Authenticator& policy, Exchange& ex) {
  asio::io_context io;
  std::optional<Verdict> out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out.emplace(co_await policy.on_request_async(ex)); }, asio::detached);
  io.run();
  return std::move(*out);
}

std::string session(std::string json, std::int64_t expires_at, const std::string& secret = kSecret) {
  return auth::CookieSealer({secret}).seal(json, detail::sealed_cookie_purpose(github_options(), "session"), expires_at);
}

TEST(BrowserLogin, ANavigationIsSentToTheProviderWithStateNonceAndPkce) {
  auto policy = make_browser_login_authenticator(github_options());
  auto ex = request("GET", "/d/home", "orgId=1&x=%2F");
  auto v = policy->on_request(ex);
  ASSERT_TRUE(v.rejects());
  const auto& r = v.rejection();
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.code, "login_required");
  auto location = header_values(r, "Location");
  ASSERT_EQ(location.size(), 1u);
  EXPECT_THAT(location[0], StartsWith("https://idp.example/authorize?tenant=t1&response_type=code&client_id=web%20client"
                                      "&redirect_uri=https%3A%2F%2Fgrafana.example%2Foauth2%2Fcallback"
                                      "&scope=read%3Auser%20user%3Aemail&state="));
  auto query = location[0].substr(location[0].find('?') + 1);
  auto state = http::query_value(query, "state");
  ASSERT_TRUE(state);
  EXPECT_GE(state->size(), 32u);
  EXPECT_EQ(http::query_value(query, "code_challenge_method"), "S256");
  EXPECT_EQ(http::query_value(query, "code_challenge")->size(), 43u);  // base64url of a SHA-256

  auto cookies = header_values(r, "Set-Cookie");
  ASSERT_EQ(cookies.size(), 1u);
  EXPECT_THAT(cookies[0], StartsWith("obsgw_session_login_" + state->substr(0, 12) + "="));
  EXPECT_THAT(cookies[0], HasSubstr("; Path=/oauth2/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure"));
  // What the cookie holds: the state in the URL, and the page to come back to.
  auto login = auth::CookieSealer({kSecret}).open(cookie_value(cookies[0]), detail::sealed_cookie_purpose(github_options(), "login"), now_s());
  ASSERT_TRUE(login);
  EXPECT_THAT(*login, HasSubstr("\"state\":\"" + *state + "\""));
  EXPECT_THAT(*login, HasSubstr("\"return_to\":\"/d/home?orgId=1&x=%2F\""));

  // Two redirects never share a state.
  auto again = request("GET", "/d/home");
  auto v2 = policy->on_request(again);
  EXPECT_NE(header_values(v2.rejection(), "Location")[0], location[0]);
}

TEST(BrowserLogin, NonNavigationsGet401AndNoRedirect) {
  auto policy = make_browser_login_authenticator(github_options());
  auto api = request("GET", "/api/dashboards", "", /*browser=*/false);
  auto v = policy->on_request(api);
  ASSERT_TRUE(v.rejects());
  EXPECT_EQ(v.rejection().status, 401);
  EXPECT_EQ(v.rejection().code, "login_required");
  EXPECT_TRUE(header_values(v.rejection(), "Location").empty());

  auto post = request("POST", "/api/ds/query");
  EXPECT_EQ(policy->on_request(post).rejection().status, 401) << "a form POST is not sent away: its body would be lost";

  auto fetch = request("GET", "/public/build/app.js");
  fetch.request().headers.add("Sec-Fetch-Mode", "cors");
  EXPECT_EQ(policy->on_request(fetch).rejection().status, 401) << "Sec-Fetch-Mode decides over Accept";
}

TEST(BrowserLogin, AnOffSiteReturnPathBecomesTheRoot) {
  auto policy = make_browser_login_authenticator(github_options());
  for (const char* path : {"//evil.example/x", "/\\evil.example"}) {
    auto ex = request("GET", path);
    auto v = policy->on_request(ex);
    auto login = auth::CookieSealer({kSecret}).open(cookie_value(header_values(v.rejection(), "Set-Cookie")[0]),
                                                    detail::sealed_cookie_purpose(github_options(), "login"), now_s());
    ASSERT_TRUE(login);
    EXPECT_THAT(*login, HasSubstr("\"return_to\":\"/\"")) << path;
  }
}

TEST(BrowserLogin, ASealedSessionAuthenticatesAndStaysWithTheGateway) {
  auto policy = make_browser_login_authenticator(github_options());
  auto cookie = session(R"({"sub":"42","user":"octocat","email":"o@example.com","name":"Mona","email_verified":true,"groups":["eng","ops"]})",
                        now_s() + 3600);
  for (int round = 0; round < 2; ++round) {  // opened, then from the per-thread cache
    auto ex = request("GET", "/d/home");
    ex.request().headers.add("Cookie", "grafana_session=abc; obsgw_session=" + cookie + "; theme=dark");
    ex.request().headers.add("X-WEBAUTH-USER", "admin");  // spoofed by the client
    auto v = policy->on_request(ex);
    ASSERT_TRUE(v.proceeds()) << round;
    ASSERT_TRUE(ex.identity);
    EXPECT_EQ(ex.identity->method, "sso");
    EXPECT_EQ(ex.identity->subject, "octocat");
    EXPECT_EQ(ex.identity->email, "o@example.com");
    EXPECT_EQ(ex.identity->name, "Mona");
    EXPECT_EQ(ex.identity->groups, (std::vector<std::string>{"eng", "ops"}));
    EXPECT_EQ(ex.request().headers.get("X-WEBAUTH-USER"), "octocat");
    EXPECT_EQ(ex.request().headers.get("X-WEBAUTH-NAME"), "Mona");
    EXPECT_EQ(ex.request().headers.get("X-Auth-Request-Groups"), "eng,ops");
    EXPECT_EQ(ex.request().headers.get("Cookie"), "grafana_session=abc; theme=dark") << "the app's cookies pass, ours not";
  }
}

TEST(BrowserLogin, TwoSessionCookiesCountAsNone) {
  // A cookie planted for a parent domain must not choose whose session the browser works in.
  auto policy = make_browser_login_authenticator(github_options());
  auto mine = session(R"({"sub":"42","user":"octocat","groups":[]})", now_s() + 3600);
  auto planted = session(R"({"sub":"66","user":"mallory","groups":[]})", now_s() + 3600);
  auto ex = request("GET", "/d/home");
  ex.request().headers.add("Cookie", "obsgw_session=" + planted + "; obsgw_session=" + mine);
  EXPECT_EQ(policy->on_request(ex).rejection().status, 302);
  EXPECT_FALSE(ex.identity);
}

TEST(BrowserLogin, UnverifiedEmailsAreNotPassedOn) {
  auto policy = make_browser_login_authenticator(github_options());
  auto ex = request("GET", "/d/home");
  ex.request().headers.add("Cookie", "obsgw_session=" + session(R"({"sub":"1","user":"eve","email":"admin@corp.example",)"
                                                                R"("email_verified":false,"groups":[]})",
                                                                now_s() + 3600));
  ASSERT_TRUE(policy->on_request(ex).proceeds());
  EXPECT_EQ(ex.identity->email, "");
  EXPECT_FALSE(ex.request().headers.get("X-Auth-Request-Email"));
}

TEST(BrowserLogin, OtherRulesOpenNoneOfTheSessions) {
  // The same cookie name and secret, but an allow list: the first route's sessions do not open here.
  auto open_route = github_options();
  auto strict = github_options();
  strict.allowed_users = {"octocat"};
  auto cookie = auth::CookieSealer({kSecret}).seal(R"({"sub":"66","user":"mallory","groups":[]})",
                                                   detail::sealed_cookie_purpose(open_route, "session"), now_s() + 3600);
  auto ex = request("GET", "/d/home");
  ex.request().headers.add("Cookie", "obsgw_session=" + cookie);
  EXPECT_EQ(make_browser_login_authenticator(strict)->on_request(ex).rejection().status, 302);
  auto same = request("GET", "/d/home");
  same.request().headers.add("Cookie", "obsgw_session=" + cookie);
  EXPECT_TRUE(make_browser_login_authenticator(open_route)->on_request(same).proceeds());
}

TEST(BrowserLogin, IframesDoNotStartSignIns) {
  auto policy = make_browser_login_authenticator(github_options());
  auto frame = request("GET", "/d-solo/abc");
  frame.request().headers.add("Sec-Fetch-Mode", "navigate");
  frame.request().headers.add("Sec-Fetch-Dest", "iframe");
  EXPECT_EQ(policy->on_request(frame).rejection().status, 401);
  auto page = request("GET", "/d/abc");
  page.request().headers.add("Sec-Fetch-Mode", "navigate");
  page.request().headers.add("Sec-Fetch-Dest", "document");
  EXPECT_EQ(policy->on_request(page).rejection().status, 302);
}

TEST(BrowserLogin, EditedExpiredOrForeignSessionsSignInAgain) {
  auto policy = make_browser_login_authenticator(github_options());
  const std::string json = R"({"sub":"42","user":"octocat","groups":[]})";
  auto good = session(json, now_s() + 3600);
  std::string edited = good;
  edited[20] = edited[20] == 'A' ? 'B' : 'A';
  for (const auto& cookie : {edited, session(json, now_s() - 1), session(json, now_s() + 3600, std::string(32, 'o')),
                             auth::CookieSealer({kSecret}).seal(json, detail::sealed_cookie_purpose(github_options(), "login"), now_s() + 3600),
                             // another route's session (same secret, another cookie name): not this route's
                             auth::CookieSealer({kSecret}).seal(json, detail::sealed_cookie_purpose([] { auto o = github_options(); o.cookie_name = "restricted_session"; return o; }(), "session"), now_s() + 3600),
                             std::string("garbage")}) {
    auto ex = request("GET", "/d/home");
    ex.request().headers.add("Cookie", "obsgw_session=" + cookie);
    auto v = policy->on_request(ex);
    ASSERT_TRUE(v.rejects());
    EXPECT_EQ(v.rejection().status, 302);
    EXPECT_FALSE(ex.identity);
  }
}

TEST(BrowserLogin, SignOutClearsTheSession) {
  auto o = github_options();
  o.post_logout_redirect = "https://idp.example/logout";
  auto policy = make_browser_login_authenticator(o);
  auto ex = request("GET", "/oauth2/sign_out");
  auto v = policy->on_request(ex);
  ASSERT_TRUE(v.rejects());
  EXPECT_EQ(v.rejection().status, 302);
  EXPECT_EQ(header_values(v.rejection(), "Location"), std::vector<std::string>{"https://idp.example/logout"});
  EXPECT_THAT(header_values(v.rejection(), "Set-Cookie")[0], StartsWith("obsgw_session=; Path=/; Max-Age=0"));
  auto post = request("POST", "/oauth2/sign_out");
  EXPECT_EQ(policy->on_request(post).rejection().status, 303);
  auto del = request("DELETE", "/oauth2/sign_out");
  EXPECT_EQ(policy->on_request(del).rejection().status, 405);
}

TEST(BrowserLogin, CallbacksThatMatchNoSignInAreRefused) {
  auto policy = make_browser_login_authenticator(github_options());
  auto answer = [&](std::string query, std::string cookie = "") {
    auto ex = request("GET", "/oauth2/callback", std::move(query));
    if (!cookie.empty()) ex.request().headers.add("Cookie", cookie);
    EXPECT_TRUE(policy->on_request(ex).suspends());
    auto v = run_async(*policy, ex);
    EXPECT_TRUE(v.rejects());
    EXPECT_FALSE(ex.identity);
    return v.rejects() ? v.rejection() : Rejection{};
  };
  // Start a sign-in, to have a genuine state and its login cookie.
  auto start = request("GET", "/d/home");
  auto redirect = policy->on_request(start);
  auto location = header_values(redirect.rejection(), "Location")[0];
  auto state = *http::query_value(location.substr(location.find('?') + 1), "state");
  auto set_cookie = header_values(redirect.rejection(), "Set-Cookie")[0];
  auto login_cookie = set_cookie.substr(0, set_cookie.find(';'));

  EXPECT_EQ(answer("code=c&state=" + state).code, "login_expired") << "no login cookie";
  EXPECT_EQ(answer("code=c").code, "invalid_callback");
  EXPECT_EQ(answer("code=c&state=" + state + "&state=" + state, login_cookie).code, "invalid_callback");
  EXPECT_EQ(answer("state=" + state, login_cookie).code, "invalid_callback") << "no code";
  // The same cookie name (the state's first 12 characters) with another state.
  std::string forged = state.substr(0, 12) + std::string(state.size() - 12, 'Z');
  EXPECT_EQ(answer("code=c&state=" + forged, login_cookie).code, "state_mismatch");
  auto refused = answer("error=access_denied&error_description=no&state=" + state, login_cookie);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.code, "login_refused");
  EXPECT_THAT(refused.message, HasSubstr("access_denied"));
  EXPECT_THAT(header_values(refused, "Set-Cookie")[0], HasSubstr("Max-Age=0")) << "the login cookie is cleared";
  auto odd = answer("error=%3Cscript%3E&state=" + state, login_cookie);
  EXPECT_THAT(odd.message, Not(HasSubstr("<"))) << "the provider's error code is cut to safe characters";
}

TEST(BrowserLogin, OptionsAreChecked) {
  auto with = [](auto edit) {
    auto o = github_options();
    edit(o);
    return [o] { make_browser_login_authenticator(o); };
  };
  EXPECT_THROW(with([](auto& o) { o.cookie_secrets = {"short"}; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.cookie_secrets.clear(); })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.redirect_url = "/oauth2/callback"; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.client_id.clear(); })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.logout_path = "/oauth2/callback"; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.token_endpoint = "http://idp.example/token"; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.identity_headers.subject = "Host"; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.cookie_domain = "example.com; SameSite=None"; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) { o.redirect_url = "http://grafana.example/oauth2/callback"; })(), std::invalid_argument);
  EXPECT_THROW(with([](auto& o) {
                 o.provider = BrowserLoginOptions::Provider::oidc;
                 o.issuer = "https://idp.example";
                 o.scopes = {"email"};
               })(),
               std::invalid_argument);
  EXPECT_NO_THROW(with([](auto&) {})());
}

}  // namespace
}  // namespace obsgw
