#include "obsgw/config.hpp"

#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "config/file_checks.hpp"
#include "config/identity_policies.hpp"
#include "config/signing_policies.hpp"
#include "config/traffic_policies.hpp"
#include "http/char_classes.hpp"
#include "obsgw/header_transform.hpp"
#include "proxy/upstream_url.hpp"

namespace obsgw {

namespace {
using config::readable;

std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "\n") + s;
  return out;
}

std::chrono::milliseconds get_ms(const ConfigNode& n, std::string_view key, std::chrono::milliseconds fallback,
                                 ConfigProblems& p) {
  return std::chrono::milliseconds(n.get_int(key, fallback.count(), 1, 24LL * 3600 * 1000, p));
}

std::optional<ListenerOptions> listener_from(const ConfigNode& n, ConfigProblems& p) {
  if (!n.is_string()) {
    p.add(n.path(), fmt::format("expected \"host:port\", got {}", n.type_name()));
    return std::nullopt;
  }
  auto l = parse_listen_address(std::string(n.string_value()));
  if (!l) p.add(n.path(), fmt::format("\"{}\" is not host:port (IPv6 as [addr]:port)", n.string_value()));
  return l;
}

void read_server(const ConfigNode& s, ServerOptions& out, ConfigProblems& p) {
  if (!s.expect_object({"listen", "tls", "admin_listen", "threads", "max_connections", "drain_timeout_ms", "limits", "timeouts"}, p))
    return;
  if (auto listen = s.find("listen")) {
    if (!listen->is_array()) p.add(listen->path(), fmt::format("expected an array of \"host:port\", got {}", listen->type_name()));
    for (const auto& e : listen->elements())
      if (auto l = listener_from(e, p)) out.listeners.push_back(*l);
  }
  if (auto tls = s.find("tls")) {
    if (!tls->is_array()) p.add(tls->path(), fmt::format("expected an array of listener objects, got {}", tls->type_name()));
    for (const auto& e : tls->elements()) {
      if (!e.expect_object({"listen", "cert_file", "key_file"}, p)) continue;
      auto addr = e.find("listen");
      if (!addr) {
        p.add(e.path() + ".listen", "required");
        continue;
      }
      auto l = listener_from(*addr, p);
      if (!l) continue;
      l->tls = true;
      l->cert_file = e.get_string("cert_file", "", p);
      l->key_file = e.get_string("key_file", "", p);
      if (l->cert_file.empty()) p.add(e.path() + ".cert_file", "required");
      else if (!readable(l->cert_file)) p.add(e.path() + ".cert_file", fmt::format("cannot read \"{}\"", l->cert_file));
      if (l->key_file.empty()) p.add(e.path() + ".key_file", "required");
      else if (!readable(l->key_file)) p.add(e.path() + ".key_file", fmt::format("cannot read \"{}\"", l->key_file));
      out.listeners.push_back(*l);
    }
  }
  if (auto admin = s.find("admin_listen")) out.admin = listener_from(*admin, p);
  out.threads = static_cast<unsigned>(s.get_int("threads", 0, 0, 256, p));
  out.max_connections = static_cast<std::size_t>(s.get_int("max_connections", 10000, 1, 10'000'000, p));
  out.drain_timeout = get_ms(s, "drain_timeout_ms", out.drain_timeout, p);
  if (auto limits = s.find("limits")) {
    if (limits->expect_object({"max_request_line_bytes", "max_header_bytes", "max_header_count", "max_body_bytes"}, p)) {
      auto& l = out.limits;
      l.max_request_line = static_cast<std::size_t>(limits->get_int("max_request_line_bytes", l.max_request_line, 64, 1 << 20, p));
      l.max_header_bytes = static_cast<std::size_t>(limits->get_int("max_header_bytes", l.max_header_bytes, 256, 1 << 24, p));
      l.max_header_count = static_cast<std::size_t>(limits->get_int("max_header_count", l.max_header_count, 1, 10000, p));
      l.max_body_bytes = static_cast<std::uint64_t>(limits->get_int("max_body_bytes", static_cast<std::int64_t>(l.max_body_bytes), 0, 1LL << 40, p));
      if (l.max_request_line > l.max_header_bytes)
        p.add(limits->path() + ".max_request_line_bytes", "must not exceed max_header_bytes");
    }
  }
  if (auto t = s.find("timeouts")) {
    if (t->expect_object({"header_ms", "body_read_ms", "idle_ms", "write_ms", "tls_handshake_ms"}, p)) {
      auto& o = out.timeouts;
      o.header = get_ms(*t, "header_ms", o.header, p);
      o.body_read = get_ms(*t, "body_read_ms", o.body_read, p);
      o.idle = get_ms(*t, "idle_ms", o.idle, p);
      o.write = get_ms(*t, "write_ms", o.write, p);
      o.tls_handshake = get_ms(*t, "tls_handshake_ms", o.tls_handshake, p);
    }
  }
}

// Several endpoints, balancing, health checks, ejection, retries and the circuit breaker of an upstream.
void read_resilience(const ConfigNode& u, UpstreamOptions& o, ConfigProblems& p) {
  o.endpoints = u.get_string_list("endpoints", p);
  for (std::size_t i = 0; i < o.endpoints.size(); ++i) {
    auto l = parse_listen_address(o.endpoints[i]);
    if (!l || l->host.empty() || l->port == 0)
      p.add(fmt::format("{}.endpoints[{}]", u.path(), i), fmt::format("\"{}\" is not host:port (IPv6 as [addr]:port)", o.endpoints[i]));
  }
  if (o.endpoints.size() > 64) p.add(u.path() + ".endpoints", "at most 64 endpoints");
  std::string balance = u.get_string("balance", "round_robin", p);
  if (balance == "least_outstanding") o.balance = UpstreamOptions::Balance::least_outstanding;
  else if (balance != "round_robin") p.add(u.path() + ".balance", fmt::format("\"{}\" is not one of round_robin, least_outstanding", balance));
  if (auto hc = u.find("health_check")) {
    if (hc->expect_object({"path", "interval_ms", "timeout_ms", "healthy_threshold", "unhealthy_threshold"}, p)) {
      auto& h = o.health_check;
      h.path = hc->get_string("path", "", p);
      if (h.path.empty() || h.path.front() != '/') p.add(hc->path() + ".path", "required: a path starting with '/'");
      for (char c : h.path)
        if (!http::is_target_char(c)) {
          p.add(hc->path() + ".path", "has a character that is not allowed in a URL (percent-encode it)");
          break;
        }
      h.interval = get_ms(*hc, "interval_ms", h.interval, p);
      h.timeout = get_ms(*hc, "timeout_ms", h.timeout, p);
      h.healthy_threshold = static_cast<unsigned>(hc->get_int("healthy_threshold", h.healthy_threshold, 1, 100, p));
      h.unhealthy_threshold = static_cast<unsigned>(hc->get_int("unhealthy_threshold", h.unhealthy_threshold, 1, 100, p));
    }
  }
  if (auto ol = u.find("outlier")) {
    if (ol->expect_object({"consecutive_failures", "ejection_ms"}, p)) {
      o.outlier.consecutive_failures = static_cast<unsigned>(ol->get_int("consecutive_failures", o.outlier.consecutive_failures, 0, 1000, p));
      o.outlier.ejection = get_ms(*ol, "ejection_ms", o.outlier.ejection, p);
    }
  }
  if (auto r = u.find("retries")) {
    if (r->expect_object({"max", "base_ms", "cap_ms", "jitter", "on_status", "per_try_timeout_ms", "budget_ratio",
                          "budget_min_per_second"}, p)) {
      auto& rt = o.retry;
      rt.max_retries = static_cast<unsigned>(r->get_int("max", 3, 0, 10, p));
      rt.base = get_ms(*r, "base_ms", rt.base, p);
      rt.cap = get_ms(*r, "cap_ms", rt.cap, p);
      if (rt.cap < rt.base) p.add(r->path() + ".cap_ms", "must not be below base_ms");
      if (auto j = r->find("jitter")) {
        if (j->type() != ConfigNode::Type::number || j->number_value() < 0 || j->number_value() > 1) p.add(j->path(), "expected a number from 0 to 1");
        else rt.jitter = j->number_value();
      }
      if (auto st = r->find("on_status")) {
        rt.on_status.clear();
        if (!st->is_array()) p.add(st->path(), "expected an array of status codes");
        for (const auto& e : st->elements()) {
          if (!e.is_integer() || e.int_value() < 500 || e.int_value() > 599) p.add(e.path(), "expected a 5xx status code");
          else rt.on_status.push_back(static_cast<int>(e.int_value()));
        }
      }
      rt.per_try_timeout = std::chrono::milliseconds(r->get_int("per_try_timeout_ms", 0, 0, 24LL * 3600 * 1000, p));
      for (const char* key : {"budget_ratio", "budget_min_per_second"}) {
        if (auto b = r->find(key)) {
          if (b->type() != ConfigNode::Type::number || b->number_value() < 0 || b->number_value() > 1000) p.add(b->path(), "expected a number from 0 to 1000");
          else (std::string_view(key) == "budget_ratio" ? rt.budget_ratio : rt.budget_min_per_second) = b->number_value();
        }
      }
    }
  }
  o.max_pending = static_cast<std::size_t>(u.get_int("max_pending", 0, 0, 10'000'000, p));
}

void read_upstream(const std::string& name, const ConfigNode& u, UpstreamOptions& o, ConfigProblems& p) {
  o.name = name;
  if (!u.expect_object({"url", "endpoints", "balance", "health_check", "outlier", "retries", "max_pending", "tls",
                        "connect_timeout_ms", "read_timeout_ms", "total_timeout_ms", "tunnel_idle_timeout_ms",
                        "max_idle_connections", "idle_timeout_ms", "resolve_interval_ms", "preserve_host", "expose_errors"}, p))
    return;
  o.url = u.get_string("url", "", p);
  if (o.url.empty()) {
    p.add(u.path() + ".url", "required");
  } else {
    std::string error;
    auto url = proxy::parse_upstream_url(o.url, error);
    if (!url) p.add(u.path() + ".url", fmt::format("\"{}\" {}", o.url, error));
    else if (auto tls = u.find("tls"); tls && !url->tls) p.add(tls->path(), "set, but the url is not https://");
  }
  if (auto tls = u.find("tls")) {
    if (tls->expect_object({"verify", "ca_file", "server_name"}, p)) {
      o.tls_verify = tls->get_bool("verify", true, p);
      o.tls_ca_file = tls->get_string("ca_file", "", p);
      o.tls_server_name = tls->get_string("server_name", "", p);
      if (!o.tls_ca_file.empty() && !readable(o.tls_ca_file))
        p.add(tls->path() + ".ca_file", fmt::format("cannot read \"{}\"", o.tls_ca_file));
    }
  }
  o.connect_timeout = get_ms(u, "connect_timeout_ms", o.connect_timeout, p);
  o.read_timeout = get_ms(u, "read_timeout_ms", o.read_timeout, p);
  o.total_timeout = get_ms(u, "total_timeout_ms", o.total_timeout, p);
  o.tunnel_idle_timeout = get_ms(u, "tunnel_idle_timeout_ms", o.tunnel_idle_timeout, p);
  o.max_idle_connections = static_cast<std::size_t>(u.get_int("max_idle_connections", 64, 0, 100000, p));
  o.idle_timeout = get_ms(u, "idle_timeout_ms", o.idle_timeout, p);
  o.resolve_interval = get_ms(u, "resolve_interval_ms", o.resolve_interval, p);
  if (o.resolve_interval < UpstreamOptions::kMinResolveInterval)
    p.add(u.path() + ".resolve_interval_ms",
          fmt::format("at least {} (a resolution per connection would stall on a slow resolver)",
                      UpstreamOptions::kMinResolveInterval.count()));
  o.preserve_host = u.get_bool("preserve_host", false, p);
  o.expose_errors = u.get_bool("expose_errors", false, p);
  read_resilience(u, o, p);
}

// Validates each policy object with its factory; the gateway is built later from the same nodes.
std::vector<ConfigNode> read_policies(const ConfigNode& policies, const PolicyRegistry& registry, ConfigProblems& p) {
  std::vector<ConfigNode> out;
  if (!policies.is_array()) p.add(policies.path(), fmt::format("expected an array, got {}", policies.type_name()));
  for (const auto& pol : policies.elements()) {
    if (!pol.is_object()) {
      p.add(pol.path(), fmt::format("expected an object with a \"type\", got {}", pol.type_name()));
      continue;
    }
    auto type = pol.find("type");
    if (!type || !type->is_string()) {
      p.add(pol.path() + ".type", "required (a string)");
      continue;
    }
    const PolicyFactory* factory = registry.find(type->string_value());
    if (!factory) {
      std::string known;
      for (const auto& t : registry.types()) known += (known.empty() ? "" : ", ") + t;
      p.add(type->path(), fmt::format("unknown policy type \"{}\" (known: {})", type->string_value(), known));
      continue;
    }
    (*factory)(pol, p);
    out.push_back(pol);
  }
  return out;
}

// Limits with one name share buckets: two different definitions under one name would silently fight.
void check_limit_names(const Config& c, ConfigProblems& p) {
  std::map<std::string, std::string> seen;
  auto scan = [&](const std::vector<ConfigNode>& policies) {
    for (const auto& node : policies) {
      auto type = node.find("type");
      if (!type || type->string_value() != "rate_limit") continue;
      for (const auto& [name, path] : config::rate_limit_names(node)) {
        auto [it, fresh] = seen.emplace(name, path);
        if (!fresh)
          p.add(path + ".name", fmt::format("limit name \"{}\" is already used at {}: limits with one name share their "
                                            "buckets; to share a limit across routes declare it once in the top-level "
                                            "\"policies\"", name, it->second));
      }
    }
  };
  scan(c.policies);
  for (const auto& r : c.routes) scan(r.policies);
}

void read_route(const ConfigNode& r, RouteConfig& out, const std::set<std::string>& upstreams,
                const PolicyRegistry& registry, ConfigProblems& p) {
  if (!r.expect_object({"name", "match", "upstream", "forward_auth", "rewrite_prefix", "retry", "trust_client_tenant_header",
                        "policies"}, p))
    return;
  out.trust_client_tenant_header = r.get_bool("trust_client_tenant_header", false, p);
  if (auto rt = r.find("retry")) {
    if (rt->expect_object({"unsafe_methods", "max_body_bytes"}, p)) {
      out.retry.unsafe_methods = rt->get_bool("unsafe_methods", false, p);
      out.retry.max_body_bytes = static_cast<std::size_t>(rt->get_int("max_body_bytes", static_cast<std::int64_t>(out.retry.max_body_bytes), 0, 1LL << 30, p));
    }
  }
  out.name = r.get_string("name", "", p);
  if (out.name.empty()) p.add(r.path() + ".name", "required");
  if (auto m = r.find("match")) {
    if (m->expect_object({"host", "path", "path_prefix", "methods"}, p)) {
      out.match.host = m->get_string("host", "", p);
      auto exact = m->find("path");
      auto prefix = m->find("path_prefix");
      if (exact && prefix) p.add(m->path(), "give either path or path_prefix, not both");
      if (exact) {
        out.match.path = m->get_string("path", "/", p);
        out.match.prefix = false;
      } else if (prefix) {
        out.match.path = m->get_string("path_prefix", "/", p);
      }
      if (out.match.path.empty() || out.match.path.front() != '/')
        p.add(m->path() + (exact ? ".path" : ".path_prefix"), "must start with '/'");
      out.match.methods = m->get_string_list("methods", p);
      for (const auto& method : out.match.methods)
        if (!http::is_token(method)) p.add(m->path() + ".methods", fmt::format("\"{}\" is not a valid method", method));
      if (!out.match.host.empty()) {
        std::string_view h = out.match.host;
        if (h.substr(0, 2) == "*.") h.remove_prefix(2);
        bool ok = !h.empty();
        for (char c : h) ok = ok && (http::is_host_char(c) || c == '[' || c == ']' || c == ':');
        if (!ok) p.add(m->path() + ".host", fmt::format("\"{}\" is not a host name or *.suffix", out.match.host));
      }
    }
  }
  out.upstream = r.get_string("upstream", "", p);
  if (auto fa = r.find("forward_auth")) {
    out.forward_auth = config::read_forward_auth(*fa, p);
    if (r.find("upstream")) p.add(fa->path(), "a forward_auth route answers itself: remove \"upstream\"");
  } else if (out.upstream.empty()) {
    p.add(r.path() + ".upstream", "required (or \"forward_auth\")");
  } else if (!upstreams.count(out.upstream)) {
    p.add(r.path() + ".upstream", fmt::format("unknown upstream \"{}\"", out.upstream));
  }
  if (auto rw = r.find("rewrite_prefix")) {
    out.rewrite_prefix = r.get_string("rewrite_prefix", "", p);
    out.has_rewrite = true;
    if (!out.match.prefix) p.add(rw->path(), "only valid with match.path_prefix");
    if (out.rewrite_prefix.empty() || out.rewrite_prefix.front() != '/') p.add(rw->path(), "must start with '/'");
    for (char c : out.rewrite_prefix)
      if (!http::is_target_char(c) || c == '?') {
        p.add(rw->path(), "has a character that is not allowed in a URL path (percent-encode it)");
        break;
      }
  }
  if (auto policies = r.find("policies")) out.policies = read_policies(*policies, registry, p);
}

std::vector<HeaderField> header_map(const ConfigNode& obj, std::string_view key, ConfigProblems& p) {
  std::vector<HeaderField> out;
  auto n = obj.find(key);
  if (!n) return out;
  if (!n->is_object()) {
    p.add(n->path(), fmt::format("expected an object of header names to values, got {}", n->type_name()));
    return out;
  }
  for (const auto& [name, value] : n->members()) {
    if (!value.is_string()) p.add(value.path(), fmt::format("expected a string, got {}", value.type_name()));
    else out.push_back(HeaderField{name, std::string(value.string_value())});
  }
  return out;
}

HeaderEdits header_edits(const ConfigNode& node, std::string_view key, ConfigProblems& p) {
  HeaderEdits e;
  auto n = node.find(key);
  if (!n || !n->expect_object({"set", "add", "remove"}, p)) return e;
  e.set = header_map(*n, "set", p);
  e.add = header_map(*n, "add", p);
  e.remove = n->get_string_list("remove", p);
  return e;
}

std::shared_ptr<const Policy> make_header_transform(const ConfigNode& node, ConfigProblems& p) {
  if (!node.expect_object({"type", "request", "response"}, p)) return nullptr;
  std::size_t before = p.list().size();
  auto request = header_edits(node, "request", p);
  auto response = header_edits(node, "response", p);
  if (p.list().size() != before) return nullptr;
  try {
    return std::make_shared<HeaderTransform>(std::move(request), std::move(response));
  } catch (const std::invalid_argument& e) {
    p.add(node.path(), e.what());
    return nullptr;
  }
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(join_lines(problems)), problems_(std::move(problems)) {}

PolicyRegistry PolicyRegistry::with_builtins() {
  PolicyRegistry r;
  r.add("headers", make_header_transform);
  r.add("jwt", config::make_jwt_policy);
  r.add("tenant", config::make_tenant_policy);
  r.add("authorize", config::make_authorize_policy);
  r.add("api_key", config::make_api_key_policy);
  r.add("introspection", config::make_introspection_policy);
  r.add("userinfo", config::make_userinfo_policy);
  r.add("browser_login", config::make_browser_login_policy);
  r.add("ip_rules", config::make_ip_rules_policy);
  r.add("rate_limit", config::make_rate_limit_policy);
  r.add("quota", config::make_quota_policy);
  r.add("sign", config::make_sign_policy);
  r.add("hmac", config::make_hmac_policy);
  return r;
}

void PolicyRegistry::add(std::string type, PolicyFactory factory) { factories_[std::move(type)] = std::move(factory); }

const PolicyFactory* PolicyRegistry::find(std::string_view type) const {
  auto it = factories_.find(type);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> PolicyRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : factories_) out.push_back(k);
  return out;
}

Config parse_config(std::string_view json, const PolicyRegistry& registry) {
  std::optional<ConfigNode> root;
  try {
    root = ConfigNode::parse(json, "config");
  } catch (const std::runtime_error& e) {
    throw ConfigError({e.what()});
  }
  ConfigProblems p;
  Config c;
  if (!root->expect_object({"server", "logging", "client_ip", "region", "redis", "policies", "upstreams", "routes"}, p))
    throw ConfigError(p.list());
  if (auto s = root->find("server")) read_server(*s, c.server, p);
  if (auto ci = root->find("client_ip")) {
    if (ci->expect_object({"trusted_proxies"}, p)) c.trusted_proxies = config::read_ip_set(*ci, "trusted_proxies", p);
  }
  if (auto redis = root->find("redis")) config::read_redis_options(*redis, p);
  c.region = root->get_string("region", "", p);
  if (!c.region.empty() && (c.region.size() > 64 || !http::is_field_value(c.region)))
    p.add("region", "must be 1 to 64 visible characters");
  if (auto policies = root->find("policies")) c.policies = read_policies(*policies, registry, p);
  if (auto l = root->find("logging")) {
    if (l->expect_object({"level", "access_log"}, p)) {
      std::string level = l->get_string("level", "info", p);
      if (!parse_log_level(level, c.logging.level))
        p.add(l->path() + ".level", fmt::format("\"{}\" is not one of debug, info, warn, error, off", level));
      c.logging.access_log = l->get_bool("access_log", true, p);
    }
  }
  std::set<std::string> names;
  if (auto u = root->find("upstreams")) {
    if (!u->is_object()) p.add(u->path(), fmt::format("expected an object of upstream name to settings, got {}", u->type_name()));
    for (const auto& [name, node] : u->members()) {
      c.upstreams.emplace_back();
      read_upstream(name, node, c.upstreams.back(), p);
      names.insert(name);
    }
  }
  if (auto routes = root->find("routes")) {
    if (!routes->is_array()) p.add(routes->path(), fmt::format("expected an array of routes, got {}", routes->type_name()));
    std::set<std::string> route_names;
    for (const auto& r : routes->elements()) {
      c.routes.emplace_back();
      read_route(r, c.routes.back(), names, registry, p);
      const auto& n = c.routes.back().name;
      if (!n.empty() && !route_names.insert(n).second) p.add(r.path() + ".name", fmt::format("route \"{}\" is defined twice", n));
    }
  }
  check_limit_names(c, p);
  if (!p.empty()) throw ConfigError(p.list());
  return c;
}

Config load_config_file(const std::string& path, const PolicyRegistry& registry) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ConfigError({fmt::format("{}: cannot open the config file", path)});
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return parse_config(ss.str(), registry);
  } catch (const ConfigError& e) {
    std::vector<std::string> prefixed;
    for (const auto& problem : e.problems()) prefixed.push_back(fmt::format("{}: {}", path, problem));
    throw ConfigError(std::move(prefixed));
  }
}

std::shared_ptr<const Gateway> build_gateway(const Config& config, unsigned io_threads, const PolicyRegistry& registry) {
  ConfigProblems p;
  std::vector<std::shared_ptr<const Forwarder>> upstreams;
  for (const auto& u : config.upstreams) {
    try {
      upstreams.push_back(make_http_forwarder(u, io_threads));
    } catch (const std::exception& e) {
      p.add(fmt::format("upstreams.{}", u.name), e.what());
    }
  }
  std::vector<std::shared_ptr<const Policy>> shared;  // one object each, so that their state is shared by every route
  for (const auto& node : config.policies) {
    auto type = node.find("type");
    const PolicyFactory* factory = type ? registry.find(type->string_value()) : nullptr;
    if (!factory) p.add(node.path(), "unknown policy type");
    else if (auto policy = (*factory)(node, p)) shared.push_back(std::move(policy));
  }
  std::vector<Route> routes;
  for (const auto& rc : config.routes) {
    Route r;
    r.name = rc.name;
    r.match = rc.match;
    r.rewrite_prefix = rc.rewrite_prefix;
    r.has_rewrite = rc.has_rewrite;
    r.retry = rc.retry;
    r.trust_client_tenant_header = rc.trust_client_tenant_header;
    for (const auto& f : upstreams)
      if (f->name() == rc.upstream) r.forwarder = f;
    r.policies = shared;

    for (const auto& node : rc.policies) {
      auto type = node.find("type");
      const PolicyFactory* factory = type ? registry.find(type->string_value()) : nullptr;
      if (!factory) {
        p.add(node.path(), "unknown policy type");
        continue;
      }
      if (auto policy = (*factory)(node, p)) r.policies.push_back(std::move(policy));
    }
    if (rc.forward_auth) {
      try {
        r.forwarder = make_forward_auth_responder("forward_auth", *rc.forward_auth);
        r.forward_auth = true;
        r.policies.insert(r.policies.begin(), make_forward_auth_guard(*rc.forward_auth, r.policies));
      } catch (const std::exception& e) {
        p.add(fmt::format("routes.{}.forward_auth", rc.name), e.what());
      }
    }
    routes.push_back(std::move(r));
  }
  if (!p.empty()) throw ConfigError(p.list());
  try {
    GatewayOptions options;
    options.access_log = config.logging.access_log;
    options.trusted_proxies = config.trusted_proxies;
    options.region = config.region;
    return std::make_shared<const Gateway>(Router(std::move(routes)), std::move(upstreams), options);
  } catch (const std::invalid_argument& e) {
    throw ConfigError({e.what()});
  }
}

}  // namespace obsgw
