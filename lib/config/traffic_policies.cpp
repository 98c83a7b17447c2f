#include "config/traffic_policies.hpp"

#include <cmath>

#include <fmt/format.h>

#include "config/secrets.hpp"
#include "http/char_classes.hpp"
#include "obsgw/ip_rules.hpp"
#include "obsgw/quota.hpp"
#include "obsgw/tenant_resolver.hpp"
#include "obsgw/rate_limiter.hpp"
#include "obsgw/server_options.hpp"

namespace obsgw::config {

namespace {

std::optional<LimitKey> parse_key(std::string_view s) {
  if (s == "global") return LimitKey::global;
  if (s == "client_ip") return LimitKey::client_ip;
  if (s == "tenant") return LimitKey::tenant;
  if (s == "subject") return LimitKey::subject;
  if (s == "route") return LimitKey::route;
  if (s == "header") return LimitKey::header;
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_period(std::string_view s) {
  using namespace std::chrono;
  if (s == "second") return milliseconds(seconds(1));
  if (s == "minute") return milliseconds(minutes(1));
  if (s == "hour") return milliseconds(hours(1));
  if (s == "day") return milliseconds(hours(24));
  return std::nullopt;
}

std::string default_limit_name(const ConfigNode& limit) { return limit.path(); }

std::optional<StoreFailureMode> parse_failure_mode(std::string_view s) {
  if (s == "fail_open") return StoreFailureMode::fail_open;
  if (s == "fail_closed") return StoreFailureMode::fail_closed;
  if (s == "local") return StoreFailureMode::local;
  return std::nullopt;
}

// The shared "redis" section a policy with "store": "redis" uses; problems of the section itself are reported
// once, by the loader.
std::optional<RedisOptions> redis_for(const ConfigNode& node, ConfigProblems& p) {
  auto section = node.document().find("redis");
  if (!section) {
    p.add(node.path() + ".store", "\"redis\" needs the top-level \"redis\" section (address, timeout_ms, ...)");
    return std::nullopt;
  }
  ConfigProblems ignored;
  return read_redis_options(*section, ignored);
}

QuotaLimits read_quota_limits(const ConfigNode& n, ConfigProblems& p) {
  QuotaLimits l;
  for (const char* key : {"requests", "bytes"}) {
    auto v = n.find(key);
    if (!v) continue;
    if (!v->is_integer() || v->int_value() < 0) {
      p.add(v->path(), "expected a whole number >= 0");
      continue;
    }
    (std::string_view(key) == "requests" ? l.requests : l.bytes) = static_cast<std::uint64_t>(v->int_value());
  }
  return l;
}

double get_positive(const ConfigNode& n, std::string_view key, double fallback, bool required, ConfigProblems& p) {
  auto v = n.find(key);
  if (!v) {
    if (required) p.add(n.path() + "." + std::string(key), "required");
    return fallback;
  }
  if (v->type() != ConfigNode::Type::number || !std::isfinite(v->number_value()) || v->number_value() <= 0) {
    p.add(v->path(), "expected a number > 0");
    return fallback;
  }
  return v->number_value();
}

}  // namespace

IpSet read_ip_set(const ConfigNode& parent, std::string_view key, ConfigProblems& p) {
  IpSet set;
  auto list = parent.find(key);
  if (!list) return set;
  if (!list->is_array()) {
    p.add(list->path(), fmt::format("expected an array of addresses, CIDR networks or IPv4 wildcards, got {}", list->type_name()));
    return set;
  }
  for (const auto& e : list->elements()) {
    if (!e.is_string()) {
      p.add(e.path(), fmt::format("expected a string, got {}", e.type_name()));
      continue;
    }
    if (auto err = set.add(e.string_value())) p.add(e.path(), fmt::format("\"{}\" {}", e.string_value(), *err));
  }
  return set;
}

std::shared_ptr<const Policy> make_ip_rules_policy(const ConfigNode& node, ConfigProblems& p) {
  if (!node.expect_object({"type", "allow", "deny"}, p)) return nullptr;
  std::size_t before = p.list().size();
  IpRulesOptions o;
  o.allow = read_ip_set(node, "allow", p);
  o.deny = read_ip_set(node, "deny", p);
  if (!node.find("allow") && !node.find("deny")) p.add(node.path(), "give \"allow\", \"deny\" or both");
  if (p.list().size() != before) return nullptr;
  return make_ip_rules(std::move(o));
}

std::optional<RedisOptions> read_redis_options(const ConfigNode& n, ConfigProblems& p) {
  if (!n.expect_object({"address", "database", "username", "password_file", "password_env", "timeout_ms",
                        "connect_timeout_ms", "max_backoff_ms", "key_prefix"}, p))
    return std::nullopt;
  std::size_t before = p.list().size();
  RedisOptions o;
  std::string address = n.get_string("address", "127.0.0.1:6379", p);
  auto l = parse_listen_address(address);
  if (!l || l->port == 0) p.add(n.path() + ".address", fmt::format("\"{}\" is not host:port (IPv6 as [addr]:port)", address));
  else o.host = l->host, o.port = l->port;
  o.database = static_cast<int>(n.get_int("database", 0, 0, 1000, p));
  o.username = n.get_string("username", "", p);
  o.password = read_secret_value(n, "password_file", "password_env", p);
  o.timeout = std::chrono::milliseconds(n.get_int("timeout_ms", o.timeout.count(), 1, 10000, p));
  o.connect_timeout = std::chrono::milliseconds(n.get_int("connect_timeout_ms", o.connect_timeout.count(), 1, 60000, p));
  o.max_backoff = std::chrono::milliseconds(n.get_int("max_backoff_ms", o.max_backoff.count(), 100, 600000, p));
  o.key_prefix = n.get_string("key_prefix", o.key_prefix, p);
  if (p.list().size() != before) return std::nullopt;
  return o;
}

std::vector<std::pair<std::string, std::string>> rate_limit_names(const ConfigNode& node) {
  std::vector<std::pair<std::string, std::string>> out;
  auto limits = node.find("limits");
  if (!limits || !limits->is_array()) return out;
  for (const auto& l : limits->elements()) {
    if (!l.is_object()) continue;
    auto name = l.find("name");
    out.emplace_back(name && name->is_string() ? std::string(name->string_value()) : default_limit_name(l), l.path());
  }
  return out;
}

std::shared_ptr<const Policy> make_rate_limit_policy(const ConfigNode& node, ConfigProblems& p) {
  if (!node.expect_object({"type", "limits", "store", "on_store_failure", "response_headers"}, p)) return nullptr;
  std::size_t before = p.list().size();
  RateLimitOptions o;
  auto limits = node.find("limits");
  if (!limits || !limits->is_array() || limits->elements().empty()) {
    p.add(node.path() + ".limits", "required: a non-empty array of limits");
    return nullptr;
  }
  if (limits->elements().size() > 16) p.add(limits->path(), "at most 16 limits per policy");
  for (const auto& l : limits->elements()) {
    if (!l.expect_object({"name", "key", "header", "ipv6_prefix", "unit", "rate", "per", "per_ms", "burst"}, p)) continue;
    LimitSpec s;
    s.name = l.get_string("name", default_limit_name(l), p);
    if (s.name.empty() || s.name.size() > 128 || s.name.find('\x1f') != std::string::npos)
      p.add(l.path() + ".name", "must be 1 to 128 characters");
    std::string key = l.get_string("key", "client_ip", p);
    if (auto k = parse_key(key)) s.key = *k;
    else p.add(l.path() + ".key", fmt::format("\"{}\" is not one of global, client_ip, tenant, subject, route, header", key));
    if (s.key == LimitKey::header) {
      s.header = l.get_string("header", "", p);
      if (!http::is_token(s.header)) p.add(l.path() + ".header", "required with key \"header\": a header name");
    } else if (l.find("header")) {
      p.add(l.path() + ".header", "only valid with key \"header\"");
    }
    s.ipv6_prefix = static_cast<unsigned>(l.get_int("ipv6_prefix", 64, 1, 128, p));
    std::string unit = l.get_string("unit", "requests", p);
    if (unit == "bytes") s.unit = LimitUnit::bytes;
    else if (unit != "requests") p.add(l.path() + ".unit", fmt::format("\"{}\" is not one of requests, bytes", unit));
    s.rate = get_positive(l, "rate", 1, true, p);
    auto per = l.find("per");
    auto per_ms = l.find("per_ms");
    if (per && per_ms) p.add(l.path(), "give either per or per_ms, not both");
    if (per) {
      std::string text = l.get_string("per", "second", p);
      if (auto d = parse_period(text)) s.period = *d;
      else p.add(per->path(), fmt::format("\"{}\" is not one of second, minute, hour, day (or use per_ms)", text));
    } else if (per_ms) {
      s.period = std::chrono::milliseconds(l.get_int("per_ms", 1000, 1, 366LL * 24 * 3600 * 1000, p));
    } else {
      p.add(l.path() + ".per", "required: second, minute, hour or day (or per_ms)");
    }
    if (l.find("burst")) s.burst = get_positive(l, "burst", 0, false, p);
    if (s.rate / (static_cast<double>(s.period.count()) * 1e6) > 1000) p.add(l.path() + ".rate", "too high for its period");
    o.limits.push_back(std::move(s));
  }
  std::string store = node.get_string("store", "local", p);
  if (store == "redis") {
    if (auto ro = redis_for(node, p)) {
      try {
        o.store = redis_limit_store(*ro);
      } catch (const std::invalid_argument& e) {
        p.add("redis", e.what());
      }
    }
  } else if (store != "local") {
    p.add(node.path() + ".store", fmt::format("\"{}\" is not one of local, redis", store));
  }
  std::string failure = node.get_string("on_store_failure", "local", p);
  if (auto m = parse_failure_mode(failure)) o.on_store_failure = *m;
  else p.add(node.path() + ".on_store_failure", fmt::format("\"{}\" is not one of local, fail_open, fail_closed", failure));
  o.response_headers = node.get_bool("response_headers", true, p);
  if (p.list().size() != before) return nullptr;
  try {
    return make_rate_limiter(std::move(o));
  } catch (const std::invalid_argument& e) {
    p.add(node.path(), e.what());
    return nullptr;
  }
}

std::shared_ptr<const Policy> make_quota_policy(const ConfigNode& node, ConfigProblems& p) {
  if (!node.expect_object({"type", "name", "period", "mode", "requests", "bytes", "tenants", "store", "on_store_failure"}, p))
    return nullptr;
  std::size_t before = p.list().size();
  QuotaOptions o;
  o.name = node.get_string("name", "", p);
  if (o.name.empty() || o.name.size() > 64 || o.name.find(':') != std::string::npos)
    p.add(node.path() + ".name", "required: 1 to 64 characters without ':' (it names the counters)");
  std::string period = node.get_string("period", "month", p);
  if (period == "day") o.period = QuotaPeriod::day;
  else if (period != "month") p.add(node.path() + ".period", fmt::format("\"{}\" is not one of day, month", period));
  std::string mode = node.get_string("mode", "enforce", p);
  if (mode == "alert") o.mode = QuotaMode::alert;
  else if (mode != "enforce") p.add(node.path() + ".mode", fmt::format("\"{}\" is not one of enforce, alert", mode));
  o.limits = read_quota_limits(node, p);
  if (auto tenants = node.find("tenants")) {
    if (!tenants->is_object()) p.add(tenants->path(), "expected an object of tenant id to {requests, bytes}");
    for (const auto& [tenant, limits] : tenants->members()) {
      if (!is_valid_tenant_id(tenant)) p.add(limits.path(), fmt::format("\"{}\" is not a valid tenant id", tenant));
      if (limits.expect_object({"requests", "bytes"}, p)) o.tenants[tenant] = read_quota_limits(limits, p);
    }
  }
  if (!o.limits.requests && !o.limits.bytes && o.tenants.empty())
    p.add(node.path(), "limits nothing: give requests, bytes or tenants");
  std::string store = node.get_string("store", "redis", p);
  if (store == "redis") {
    o.redis = redis_for(node, p);
  } else if (store != "local") {
    p.add(node.path() + ".store", fmt::format("\"{}\" is not one of redis, local", store));
  }
  std::string failure = node.get_string("on_store_failure", "fail_open", p);
  if (auto m = parse_failure_mode(failure)) o.on_store_failure = *m;
  else p.add(node.path() + ".on_store_failure", fmt::format("\"{}\" is not one of fail_open, fail_closed, local", failure));
  if (p.list().size() != before) return nullptr;
  try {
    return make_quota(std::move(o));
  } catch (const std::invalid_argument& e) {
    p.add(node.path(), e.what());
    return nullptr;
  }
}

}  // namespace obsgw::config
