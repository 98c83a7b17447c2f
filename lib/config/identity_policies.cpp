#include "config/identity_policies.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "auth/jws.hpp"
#include "config/file_checks.hpp"
#include "config/secrets.hpp"
#include "obsgw/api_key_authenticator.hpp"
#include "obsgw/authorization.hpp"
#include "obsgw/browser_login.hpp"
#include "obsgw/introspection_authenticator.hpp"
#include "obsgw/jwt_authenticator.hpp"
#include "obsgw/tenant_resolver.hpp"

namespace obsgw::config {

namespace {
std::chrono::seconds get_s(const ConfigNode& n, std::string_view key, std::chrono::seconds fallback, std::int64_t min,
                           ConfigProblems& p) {
  return std::chrono::seconds(n.get_int(key, fallback.count(), min, 30LL * 24 * 3600, p));
}
std::chrono::milliseconds get_ms(const ConfigNode& n, std::string_view key, std::chrono::milliseconds fallback,
                                 std::int64_t min, ConfigProblems& p) {
  return std::chrono::milliseconds(n.get_int(key, fallback.count(), min, 600'000, p));
}

// A string or an array of strings.
std::vector<std::string> one_or_many(const ConfigNode& n, std::string_view key, ConfigProblems& p) {
  auto v = n.find(key);
  if (!v) return {};
  if (v->is_string()) return {std::string(v->string_value())};
  return n.get_string_list(key, p);
}

std::vector<ClaimRule> read_rules(const ConfigNode& n, std::string_view key, ConfigProblems& p) {
  std::vector<ClaimRule> rules;
  auto list = n.find(key);
  if (!list) return rules;
  if (!list->is_array()) {
    p.add(list->path(), fmt::format("expected an array of {{\"claim\", \"contains\"|\"one_of\"}}, got {}", list->type_name()));
    return rules;
  }
  for (const auto& r : list->elements()) {
    if (!r.expect_object({"claim", "contains", "one_of"}, p)) continue;
    ClaimRule rule;
    rule.claim = r.get_string("claim", "", p);
    rule.contains = one_or_many(r, "contains", p);
    rule.one_of = one_or_many(r, "one_of", p);
    if (rule.claim.empty()) p.add(r.path() + ".claim", "required");
    if (rule.contains.empty() && rule.one_of.empty()) p.add(r.path(), "give contains or one_of");
    rules.push_back(std::move(rule));
  }
  return rules;
}

JwtProviderOptions read_provider(const ConfigNode& n, ConfigProblems& p) {
  JwtProviderOptions o;
  if (!n.expect_object({"issuer", "discovery", "jwks_uri", "jwks_file", "public_key_files", "hmac_secret_file",
                        "hmac_secret_env", "ca_file", "allow_http", "refresh_interval_s", "min_refresh_interval_s",
                        "max_refresh_interval_s", "fetch_timeout_ms", "cold_start_wait_ms", "audiences", "any_audience", "token_type",
                        "require_exp", "leeway_s", "required_claims", "rules", "algorithms", "groups_claim"},
                       p))
    return o;
  o.issuer = n.get_string("issuer", "", p);
  if (o.issuer.empty()) p.add(n.path() + ".issuer", "required");
  o.discovery = n.get_bool("discovery", false, p);
  o.jwks_uri = n.get_string("jwks_uri", "", p);
  o.jwks_file = n.get_string("jwks_file", "", p);
  o.public_key_files = n.get_string_list("public_key_files", p);
  o.hmac_secret = read_secret_value(n, "hmac_secret_file", "hmac_secret_env", p);
  int sources = int(o.discovery) + int(!o.jwks_uri.empty()) + int(!o.jwks_file.empty()) +
                int(!o.public_key_files.empty()) + int(n.find("hmac_secret_file") || n.find("hmac_secret_env"));
  if (sources != 1)
    p.add(n.path(), "give exactly one key source: discovery, jwks_uri, jwks_file, public_key_files, hmac_secret_file "
                    "or hmac_secret_env");
  if (!o.jwks_file.empty() && !readable(o.jwks_file))
    p.add(n.path() + ".jwks_file", fmt::format("cannot read \"{}\"", o.jwks_file));
  for (const auto& f : o.public_key_files)
    if (!readable(f)) p.add(n.path() + ".public_key_files", fmt::format("cannot read \"{}\"", f));
  if (!o.hmac_secret.empty() && o.hmac_secret.size() < 32)
    p.add(n.path() + (n.find("hmac_secret_file") ? ".hmac_secret_file" : ".hmac_secret_env"),
          fmt::format("the secret has {} bytes; HMAC needs at least 32 (RFC 7518 3.2)", o.hmac_secret.size()));
  o.ca_file = n.get_string("ca_file", "", p);
  if (!o.ca_file.empty() && !readable(o.ca_file)) p.add(n.path() + ".ca_file", fmt::format("cannot read \"{}\"", o.ca_file));
  o.allow_http = n.get_bool("allow_http", false, p);
  auto check_url = [&](const std::string& url, const char* key) {
    if (url.empty()) return;
    bool https = url.rfind("https://", 0) == 0, http = url.rfind("http://", 0) == 0;
    if (!https && !(http && o.allow_http))
      p.add(n.path() + "." + key,
            fmt::format("\"{}\" must be an https:// URL{}", url, http ? " (set allow_http for plain http)" : ""));
  };
  if (o.discovery) check_url(o.issuer, "issuer");
  check_url(o.jwks_uri, "jwks_uri");
  o.refresh_interval = get_s(n, "refresh_interval_s", o.refresh_interval, 1, p);
  // At least a second: tokens naming unknown kids, which anyone can send, trigger these refreshes.
  o.min_refresh_interval = get_s(n, "min_refresh_interval_s", o.min_refresh_interval, 1, p);
  o.max_refresh_interval = get_s(n, "max_refresh_interval_s", o.max_refresh_interval, 1, p);
  if (o.min_refresh_interval > o.max_refresh_interval)
    p.add(n.path() + ".min_refresh_interval_s", "must not exceed max_refresh_interval_s");
  o.fetch_timeout = get_ms(n, "fetch_timeout_ms", o.fetch_timeout, 100, p);
  o.cold_start_wait = get_ms(n, "cold_start_wait_ms", o.cold_start_wait, 0, p);
  o.audiences = one_or_many(n, "audiences", p);
  o.any_audience = n.get_bool("any_audience", false, p);
  if (o.audiences.empty() && !o.any_audience)
    p.add(n.path() + ".audiences", "required: the audience (aud) tokens must be meant for (or \"any_audience\": true)");
  if (!o.audiences.empty() && o.any_audience) p.add(n.path() + ".any_audience", "contradicts audiences: give one of them");
  o.token_type = n.get_string("token_type", "", p);
  o.require_exp = n.get_bool("require_exp", true, p);
  o.leeway = get_s(n, "leeway_s", o.leeway, 0, p);
  o.required_claims = n.get_string_list("required_claims", p);
  o.rules = read_rules(n, "rules", p);
  o.algorithms = n.get_string_list("algorithms", p);
  for (const auto& a : o.algorithms)
    if (!auth::parse_jws_alg(a) && !auth::parse_hmac_alg(a))
      p.add(n.path() + ".algorithms", fmt::format("\"{}\" is not a supported algorithm", a));
  o.groups_claim = n.get_string("groups_claim", o.groups_claim, p);
  return o;
}

IdentityHeaders read_identity_headers(const ConfigNode& node, ConfigProblems& p) {
  IdentityHeaders h;
  auto n = node.find("identity_headers");
  if (!n || !n->expect_object({"subject", "email", "groups", "client_id", "name"}, p)) return h;
  h.subject = n->get_string("subject", h.subject, p);
  h.email = n->get_string("email", h.email, p);
  h.groups = n->get_string("groups", h.groups, p);
  h.client_id = n->get_string("client_id", h.client_id, p);
  h.name = n->get_string("name", h.name, p);
  return h;
}

void read_sources(const ConfigNode& node, std::vector<TokenSource>& sources, ConfigProblems& p) {
  if (!node.find("token_sources")) return;
  sources.clear();
  auto texts = node.get_string_list("token_sources", p);
  if (texts.empty()) p.add(node.path() + ".token_sources", "at least one source is required");
  for (const auto& text : texts) {
    if (auto s = TokenSource::parse(text)) sources.push_back(*s);
    else
      p.add(node.path() + ".token_sources",
            fmt::format("\"{}\" is not one of bearer, basic, header:NAME, cookie:NAME, query:NAME", text));
  }
}

template <class F>
auto build(const ConfigNode& node, ConfigProblems& p, std::size_t problems_before, F f) -> decltype(f()) {
  if (p.list().size() != problems_before) return nullptr;
  try {
    return f();
  } catch (const std::exception& e) {
    p.add(node.path(), e.what());
    return nullptr;
  }
}
}  // namespace

std::shared_ptr<const Policy> make_jwt_policy(const ConfigNode& node, ConfigProblems& p) {
  std::size_t before = p.list().size();
  if (!node.expect_object({"type", "providers", "token_sources", "forward_token", "identity_headers", "cache_entries",
                           "max_token_bytes", "realm"},
                          p))
    return nullptr;
  JwtAuthenticatorOptions o;
  auto providers = node.find("providers");
  if (!providers || !providers->is_array() || providers->elements().empty())
    p.add(node.path() + ".providers", "required: an array of at least one provider");
  else
    for (const auto& e : providers->elements()) o.providers.push_back(read_provider(e, p));
  read_sources(node, o.sources, p);
  o.forward_token = node.get_bool("forward_token", false, p);
  o.identity_headers = read_identity_headers(node, p);
  o.cache_entries = static_cast<std::size_t>(node.get_int("cache_entries", 10000, 0, 10'000'000, p));
  o.max_token_bytes = static_cast<std::size_t>(node.get_int("max_token_bytes", 16384, 256, 1 << 20, p));
  o.realm = node.get_string("realm", o.realm, p);
  return build(node, p, before, [&] { return std::shared_ptr<const Policy>(make_jwt_authenticator(std::move(o))); });
}

std::shared_ptr<const Policy> make_tenant_policy(const ConfigNode& node, ConfigProblems& p) {
  std::size_t before = p.list().size();
  if (!node.expect_object({"type", "claim", "strip_prefix", "mapping", "bindings", "bindings_issuer", "from_header", "require_header",
                           "federation", "client_header", "upstream_header"},
                          p))
    return nullptr;
  TenantResolverOptions o;
  o.claim = node.get_string("claim", "", p);
  o.strip_prefix = node.get_string("strip_prefix", "", p);
  if (auto m = node.find("mapping")) {
    if (!m->is_object()) p.add(m->path(), fmt::format("expected an object of claim value to tenant, got {}", m->type_name()));
    for (const auto& [value, tenant] : m->members()) {
      if (!tenant.is_string()) p.add(tenant.path(), fmt::format("expected a tenant id, got {}", tenant.type_name()));
      else if (!is_valid_tenant_id(tenant.string_value()))
        p.add(tenant.path(), fmt::format("\"{}\" is not a valid tenant id", tenant.string_value()));
      else o.mapping[value] = std::string(tenant.string_value());
    }
  }
  if (auto b = node.find("bindings")) {
    if (!b->is_object()) p.add(b->path(), fmt::format("expected an object of subject to tenants, got {}", b->type_name()));
    for (const auto& [who, tenants] : b->members()) {
      if (!(who.rfind("sub:", 0) == 0 || who.rfind("client:", 0) == 0) || who.find(':') + 1 == who.size())
        p.add(tenants.path(), "binding keys are \"sub:<subject>\" or \"client:<client id>\"");
      auto list = one_or_many(*b, who, p);
      for (const auto& t : list)
        if (!is_valid_tenant_id(t)) p.add(tenants.path(), fmt::format("\"{}\" is not a valid tenant id", t));
      o.bindings[who] = std::move(list);
    }
  }
  o.bindings_issuer = node.get_string("bindings_issuer", "", p);
  if (!o.bindings_issuer.empty() && o.bindings.empty()) p.add(node.path() + ".bindings_issuer", "needs bindings");
  if (!o.claim.empty() && !o.bindings.empty()) p.add(node.path(), "give either claim or bindings, not both");
  if (o.claim.empty() && (!o.mapping.empty() || !o.strip_prefix.empty()))
    p.add(node.path(), "mapping and strip_prefix need a claim");
  o.from_header = node.get_bool("from_header", false, p);
  o.require_header = node.get_bool("require_header", false, p);
  if (o.require_header && !o.from_header) p.add(node.path() + ".require_header", "needs from_header: true");
  o.federation = node.get_bool("federation", false, p);
  o.client_header = node.get_string("client_header", o.client_header, p);
  o.upstream_header = node.get_string("upstream_header", o.upstream_header, p);
  return build(node, p, before, [&] { return std::shared_ptr<const Policy>(make_tenant_resolver(std::move(o))); });
}

std::shared_ptr<const Policy> make_authorize_policy(const ConfigNode& node, ConfigProblems& p) {
  std::size_t before = p.list().size();
  if (!node.expect_object({"type", "scopes", "groups", "roles", "roles_claim", "claims"}, p)) return nullptr;
  AuthorizationOptions o;
  o.scopes = one_or_many(node, "scopes", p);
  o.groups = one_or_many(node, "groups", p);
  o.roles = one_or_many(node, "roles", p);
  o.roles_claim = node.get_string("roles_claim", o.roles_claim, p);
  o.claims = read_rules(node, "claims", p);
  if (o.scopes.empty() && o.groups.empty() && o.roles.empty() && o.claims.empty())
    p.add(node.path(), "requires nothing: give scopes, groups, roles or claims");
  return build(node, p, before, [&] { return std::shared_ptr<const Policy>(make_authorizer(std::move(o))); });
}

std::shared_ptr<const Policy> make_api_key_policy(const ConfigNode& node, ConfigProblems& p) {
  std::size_t before = p.list().size();
  if (!node.expect_object({"type", "keys", "token_sources", "forward_key", "identity_headers", "realm"}, p)) return nullptr;
  ApiKeyAuthenticatorOptions o;
  auto keys = node.find("keys");
  if (!keys || !keys->is_array() || keys->elements().empty()) p.add(node.path() + ".keys", "required: an array of keys");
  else
    for (const auto& k : keys->elements()) {
      if (!k.expect_object({"id", "sha256", "subject", "tenants", "scopes", "groups"}, p)) continue;
      ApiKey key;
      key.id = k.get_string("id", "", p);
      if (key.id.empty()) p.add(k.path() + ".id", "required");
      key.sha256 = k.get_string("sha256", "", p);
      if (key.sha256.size() != 64 || key.sha256.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        p.add(k.path() + ".sha256", "expected the 64 hex digits of the key's SHA-256 (printf %s \"$KEY\" | sha256sum)");
      key.subject = k.get_string("subject", "", p);
      key.tenants = one_or_many(k, "tenants", p);
      for (const auto& t : key.tenants)
        if (!is_valid_tenant_id(t)) p.add(k.path() + ".tenants", fmt::format("\"{}\" is not a valid tenant id", t));
      key.scopes = one_or_many(k, "scopes", p);
      key.groups = one_or_many(k, "groups", p);
      o.keys.push_back(std::move(key));
    }
  read_sources(node, o.sources, p);
  o.forward_key = node.get_bool("forward_key", false, p);
  o.identity_headers = read_identity_headers(node, p);
  o.realm = node.get_string("realm", o.realm, p);
  return build(node, p, before, [&] { return std::shared_ptr<const Policy>(make_api_key_authenticator(std::move(o))); });
}

namespace {
std::shared_ptr<const Policy> make_opaque_token_policy(const ConfigNode& node, ConfigProblems& p,
                                                       IntrospectionAuthenticatorOptions::Mode mode) {
  std::size_t before = p.list().size();
  const bool introspection = mode == IntrospectionAuthenticatorOptions::Mode::introspection;
  std::initializer_list<std::string_view> introspection_keys = {
      "type", "endpoint", "client_id", "client_secret_file", "client_secret_env", "ca_file", "allow_http", "timeout_ms",
      "cache_ttl_s", "issuer", "audiences", "require_token_type", "groups_claim", "token_sources", "forward_token", "identity_headers",
      "cache_entries", "realm"};
  std::initializer_list<std::string_view> userinfo_keys = {
      "type", "endpoint", "ca_file", "allow_http", "timeout_ms", "cache_ttl_s", "groups_claim", "token_sources",
      "forward_token", "identity_headers", "cache_entries", "realm"};
  if (!node.expect_object(introspection ? introspection_keys : userinfo_keys, p)) return nullptr;
  IntrospectionAuthenticatorOptions o;
  o.mode = mode;
  o.endpoint = node.get_string("endpoint", "", p);
  o.allow_http = node.get_bool("allow_http", false, p);
  if (o.endpoint.empty()) p.add(node.path() + ".endpoint", "required");
  else if (o.endpoint.rfind("https://", 0) != 0 && !(o.allow_http && o.endpoint.rfind("http://", 0) == 0))
    p.add(node.path() + ".endpoint", fmt::format("\"{}\" must be an https:// URL (or set allow_http)", o.endpoint));
  if (introspection) {
    o.client_id = node.get_string("client_id", "", p);
    if (o.client_id.empty()) p.add(node.path() + ".client_id", "required: the gateway's client at the provider");
    o.client_secret = read_secret_value(node, "client_secret_file", "client_secret_env", p);
    o.issuer = node.get_string("issuer", "", p);
    o.audiences = one_or_many(node, "audiences", p);
    o.require_token_type = node.get_bool("require_token_type", true, p);
  }
  o.ca_file = node.get_string("ca_file", "", p);
  if (!o.ca_file.empty() && !readable(o.ca_file)) p.add(node.path() + ".ca_file", fmt::format("cannot read \"{}\"", o.ca_file));
  o.timeout = get_ms(node, "timeout_ms", o.timeout, 100, p);
  o.cache_ttl = get_s(node, "cache_ttl_s", o.cache_ttl, 0, p);
  o.groups_claim = node.get_string("groups_claim", o.groups_claim, p);
  read_sources(node, o.sources, p);
  o.forward_token = node.get_bool("forward_token", false, p);
  o.identity_headers = read_identity_headers(node, p);
  o.cache_entries = static_cast<std::size_t>(node.get_int("cache_entries", 10000, 0, 10'000'000, p));
  o.realm = node.get_string("realm", o.realm, p);
  return build(node, p, before, [&] { return std::shared_ptr<const Policy>(make_introspection_authenticator(std::move(o))); });
}
}  // namespace

std::shared_ptr<const Policy> make_introspection_policy(const ConfigNode& node, ConfigProblems& p) {
  return make_opaque_token_policy(node, p, IntrospectionAuthenticatorOptions::Mode::introspection);
}

std::shared_ptr<const Policy> make_userinfo_policy(const ConfigNode& node, ConfigProblems& p) {
  return make_opaque_token_policy(node, p, IntrospectionAuthenticatorOptions::Mode::userinfo);
}

std::shared_ptr<const Policy> make_browser_login_policy(const ConfigNode& node, ConfigProblems& p) {
  std::size_t before = p.list().size();
  if (!node.expect_object({"type", "provider", "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint",
                           "jwks_uri", "github_api_url", "client_id", "client_secret_file", "client_secret_env",
                           "redirect_url", "scopes", "authorization_params", "cookie_secret_files", "cookie_secret_envs",
                           "cookie_name", "cookie_domain", "cookie_secure", "session_ttl_s", "login_ttl_s", "logout_path",
                           "post_logout_redirect", "subject_claim", "groups_claim", "allowed_email_domains",
                           "allowed_users", "ca_file", "allow_http", "timeout_ms", "leeway_s", "identity_headers",
                           "cache_entries"},
                          p))
    return nullptr;
  BrowserLoginOptions o;
  const std::string provider = node.get_string("provider", "oidc", p);
  if (provider == "github") o.provider = BrowserLoginOptions::Provider::github;
  else if (provider != "oidc") p.add(node.path() + ".provider", fmt::format("\"{}\" is not one of oidc, github", provider));
  o.issuer = node.get_string("issuer", "", p);
  if (provider == "oidc" && o.issuer.empty())
    p.add(node.path() + ".issuer", "required for an OpenID provider (its discovery document is read from there)");
  o.allow_http = node.get_bool("allow_http", false, p);
  for (const char* key : {"issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "github_api_url"}) {
    std::string url = node.get_string(key, "", p);
    if (!url.empty() && url.rfind("https://", 0) != 0 && !(o.allow_http && url.rfind("http://", 0) == 0))
      p.add(node.path() + "." + key, fmt::format("\"{}\" must be an https:// URL (or set allow_http)", url));
  }
  o.authorization_endpoint = node.get_string("authorization_endpoint", "", p);
  o.token_endpoint = node.get_string("token_endpoint", "", p);
  o.userinfo_endpoint = node.get_string("userinfo_endpoint", "", p);
  o.jwks_uri = node.get_string("jwks_uri", "", p);
  o.github_api_url = node.get_string("github_api_url", o.github_api_url, p);
  o.client_id = node.get_string("client_id", "", p);
  if (o.client_id.empty()) p.add(node.path() + ".client_id", "required: the gateway's client id at the provider");
  o.client_secret = read_secret_value(node, "client_secret_file", "client_secret_env", p);
  o.redirect_url = node.get_string("redirect_url", "", p);
  if (o.redirect_url.rfind("https://", 0) != 0 && o.redirect_url.rfind("http://", 0) != 0)
    p.add(node.path() + ".redirect_url",
          "required: the absolute URL of the callback on this gateway, as registered at the provider "
          "(https://grafana.example.com/oauth2/callback)");
  o.scopes = node.get_string_list("scopes", p);
  if (auto params = node.find("authorization_params")) {
    if (!params->is_object()) p.add(params->path(), fmt::format("expected an object of parameter to value, got {}", params->type_name()));
    for (const auto& [k, v] : params->members()) {
      static constexpr std::string_view reserved[] = {"response_type", "client_id", "redirect_uri", "scope", "state",
                                                      "nonce", "code_challenge", "code_challenge_method"};
      if (std::find(std::begin(reserved), std::end(reserved), k) != std::end(reserved))
        p.add(v.path(), "set by the gateway itself");
      else if (!v.is_string()) p.add(v.path(), fmt::format("expected a string, got {}", v.type_name()));
      else o.authorization_params.emplace_back(k, std::string(v.string_value()));
    }
  }
  // Secrets by file or environment variable, never inline; the first seals new cookies, all open them.
  for (auto [key, is_file] : {std::pair<const char*, bool>{"cookie_secret_files", true}, {"cookie_secret_envs", false}}) {
    for (const auto& name : node.get_string_list(key, p)) {
      const std::string where = node.path() + "." + key;
      std::string secret = is_file ? read_secret_file(name, where, p) : read_secret_env(name, where, p);
      if (!secret.empty() && secret.size() < 32)
        p.add(where, fmt::format("the secret in {} has {} bytes; at least 32 are required (openssl rand -base64 32)", name, secret.size()));
      o.cookie_secrets.push_back(std::move(secret));
    }
  }
  if (o.cookie_secrets.empty())
    p.add(node.path(), "give cookie_secret_files or cookie_secret_envs: the secret that seals the session cookies");
  o.cookie_name = node.get_string("cookie_name", o.cookie_name, p);
  o.cookie_domain = node.get_string("cookie_domain", "", p);
  o.cookie_secure = node.get_bool("cookie_secure", true, p);
  o.session_ttl = get_s(node, "session_ttl_s", o.session_ttl, 60, p);
  o.login_ttl = get_s(node, "login_ttl_s", o.login_ttl, 30, p);
  o.logout_path = node.get_string("logout_path", o.logout_path, p);
  o.post_logout_redirect = node.get_string("post_logout_redirect", o.post_logout_redirect, p);
  o.subject_claim = node.get_string("subject_claim", o.subject_claim, p);
  o.groups_claim = node.get_string("groups_claim", o.groups_claim, p);
  o.allowed_email_domains = one_or_many(node, "allowed_email_domains", p);
  o.allowed_users = one_or_many(node, "allowed_users", p);
  o.ca_file = node.get_string("ca_file", "", p);
  if (!o.ca_file.empty() && !readable(o.ca_file)) p.add(node.path() + ".ca_file", fmt::format("cannot read \"{}\"", o.ca_file));
  o.timeout = get_ms(node, "timeout_ms", o.timeout, 100, p);
  o.leeway = get_s(node, "leeway_s", o.leeway, 0, p);
  o.identity_headers = read_identity_headers(node, p);
  o.cache_entries = static_cast<std::size_t>(node.get_int("cache_entries", 10000, 0, 10'000'000, p));
  return build(node, p, before, [&] { return std::shared_ptr<const Policy>(make_browser_login_authenticator(std::move(o))); });
}

ForwardAuthOptions read_forward_auth(const ConfigNode& node, ConfigProblems& p) {
  ForwardAuthOptions o;
  if (node.type() == ConfigNode::Type::boolean) {
    if (!node.bool_value()) p.add(node.path(), "false is not meaningful: leave forward_auth out");
    return o;
  }
  if (!node.expect_object({"response_headers"}, p)) return o;
  if (node.find("response_headers")) o.response_headers = node.get_string_list("response_headers", p);
  return o;
}

}  // namespace obsgw::config
