#include "server/metrics.hpp"

#include <fmt/format.h>

#include "server/active_clients.hpp"
#include "util/json_escape.hpp"

namespace obsgw::detail {

namespace {
constexpr auto relaxed = std::memory_order_relaxed;

std::string prom_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string status_label(std::size_t slot) {
  int s = slot_status(slot);
  return s < 10 ? fmt::format("{}xx", s) : std::to_string(s);
}
}  // namespace

std::size_t status_slot(int status) noexcept {
  for (std::size_t i = 0; i < kTrackedStatuses.size(); ++i)
    if (kTrackedStatuses[i] == status) return i;
  int cls = status / 100;
  if (cls < 1 || cls > 5) cls = 5;
  return kTrackedStatuses.size() + static_cast<std::size_t>(cls - 1);
}

int slot_status(std::size_t slot) noexcept {
  if (slot < kTrackedStatuses.size()) return kTrackedStatuses[slot];
  return static_cast<int>(slot - kTrackedStatuses.size()) + 1;
}

void RouteCounters::record(int status, std::chrono::microseconds duration, std::uint64_t in, std::uint64_t out,
                           bool forwarded) noexcept {
  auto& s = shards[shard_index()];
  s.by_status[status_slot(status)].fetch_add(1, relaxed);
  double secs = static_cast<double>(duration.count()) / 1e6;
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && secs > kLatencyBuckets[b]) ++b;
  s.latency[b].fetch_add(1, relaxed);
  s.latency_sum_us.fetch_add(static_cast<std::uint64_t>(duration.count()), relaxed);
  if (in) s.bytes_in.fetch_add(in, relaxed);
  if (out) s.bytes_out.fetch_add(out, relaxed);
  if (forwarded) s.forwarded.fetch_add(1, relaxed);
}

void LabelledCounters::add(const std::string& key, std::uint64_t n) {
  auto& shard = shards_[shard_index()];
  std::lock_guard lock(shard.mutex);
  auto it = shard.values.find(key);
  if (it == shard.values.end()) shard.values.emplace(key, n);
  else it->second += n;
}

std::map<std::string, std::uint64_t> LabelledCounters::snapshot() const {
  std::map<std::string, std::uint64_t> merged;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    for (const auto& [k, v] : shard.values) merged[k] += v;
  }
  return merged;
}

Metrics& Metrics::instance() {
  static Metrics m;
  return m;
}

std::shared_ptr<RouteCounters> Metrics::route(const std::string& name) {
  std::lock_guard lock(routes_mutex_);
  auto& slot = routes_[name];
  if (!slot) slot = std::make_shared<RouteCounters>(name);
  return slot;
}

std::int64_t Metrics::active_connections() const noexcept {
  std::int64_t n = 0;
  for (const auto& s : conn_) n += s.active.load(relaxed);
  return n;
}

std::uint64_t Metrics::total_requests() const noexcept {
  std::uint64_t n = 0;
  for (const auto& s : conn_) n += s.requests.load(relaxed);
  return n;
}

namespace {
struct RouteTotals {
  std::array<std::uint64_t, kStatusSlots> by_status{};
  std::array<std::uint64_t, kLatencyBuckets.size() + 1> latency{};
  std::uint64_t latency_sum_us = 0, bytes_in = 0, bytes_out = 0, forwarded = 0, requests = 0;
};
RouteTotals sum(const RouteCounters& r) {
  RouteTotals t;
  for (const auto& s : r.shards) {
    for (std::size_t i = 0; i < kStatusSlots; ++i) t.by_status[i] += s.by_status[i].load(relaxed);
    for (std::size_t i = 0; i < t.latency.size(); ++i) t.latency[i] += s.latency[i].load(relaxed);
    t.latency_sum_us += s.latency_sum_us.load(relaxed);
    t.bytes_in += s.bytes_in.load(relaxed);
    t.bytes_out += s.bytes_out.load(relaxed);
    t.forwarded += s.forwarded.load(relaxed);
  }
  for (auto v : t.by_status) t.requests += v;
  return t;
}
}  // namespace

std::string Metrics::render_prometheus() const {
  std::map<std::string, std::shared_ptr<RouteCounters>> routes;
  {
    std::lock_guard lock(routes_mutex_);
    routes = routes_;
  }
  std::string out;
  out.reserve(8192);
  auto line = [&]<class... A>(fmt::format_string<A...> f, A&&... a) { fmt::format_to(std::back_inserter(out), f, std::forward<A>(a)...); };

  out += "# HELP obsgw_requests_total Requests answered, by route and status code.\n"
         "# TYPE obsgw_requests_total counter\n";
  std::vector<std::pair<std::string, RouteTotals>> totals;
  for (const auto& [name, r] : routes) totals.emplace_back(name, sum(*r));
  for (const auto& [name, t] : totals)
    for (std::size_t i = 0; i < kStatusSlots; ++i)
      if (t.by_status[i]) line("obsgw_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", prom_label(name), status_label(i), t.by_status[i]);

  out += "# HELP obsgw_request_duration_seconds Time from the end of the request head to the end of the response.\n"
         "# TYPE obsgw_request_duration_seconds histogram\n";
  for (const auto& [name, t] : totals) {
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kLatencyBuckets.size(); ++b) {
      cumulative += t.latency[b];
      line("obsgw_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", prom_label(name), kLatencyBuckets[b], cumulative);
    }
    cumulative += t.latency.back();
    line("obsgw_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", prom_label(name), cumulative);
    line("obsgw_request_duration_seconds_sum{{route=\"{}\"}} {}\n", prom_label(name), static_cast<double>(t.latency_sum_us) / 1e6);
    line("obsgw_request_duration_seconds_count{{route=\"{}\"}} {}\n", prom_label(name), cumulative);
  }

  out += "# HELP obsgw_received_bytes_total Request body bytes read from clients.\n"
         "# TYPE obsgw_received_bytes_total counter\n";
  for (const auto& [name, t] : totals) line("obsgw_received_bytes_total{{route=\"{}\"}} {}\n", prom_label(name), t.bytes_in);
  out += "# HELP obsgw_sent_bytes_total Response body bytes sent to clients.\n"
         "# TYPE obsgw_sent_bytes_total counter\n";
  for (const auto& [name, t] : totals) line("obsgw_sent_bytes_total{{route=\"{}\"}} {}\n", prom_label(name), t.bytes_out);
  out += "# HELP obsgw_forwarded_total Requests that reached an upstream and got its answer relayed.\n"
         "# TYPE obsgw_forwarded_total counter\n";
  for (const auto& [name, t] : totals) line("obsgw_forwarded_total{{route=\"{}\"}} {}\n", prom_label(name), t.forwarded);

  out += "# HELP obsgw_rejections_total Requests the gateway answered itself, by reason.\n"
         "# TYPE obsgw_rejections_total counter\n";
  for (const auto& [code, n] : rejections.snapshot()) line("obsgw_rejections_total{{reason=\"{}\"}} {}\n", prom_label(code), n);

  out += "# HELP obsgw_upstream_errors_total Failed upstream attempts, by upstream and kind.\n"
         "# TYPE obsgw_upstream_errors_total counter\n";
  for (const auto& [key, n] : upstream_errors.snapshot()) {
    auto sep = key.find('\x1f');
    line("obsgw_upstream_errors_total{{upstream=\"{}\",kind=\"{}\"}} {}\n", prom_label(key.substr(0, sep)),
         prom_label(sep == std::string::npos ? "" : key.substr(sep + 1)), n);
  }
  out += "# HELP obsgw_upstream_retries_total Requests sent again to an upstream after a failed attempt.\n"
         "# TYPE obsgw_upstream_retries_total counter\n";
  for (const auto& [key, n] : upstream_retries.snapshot()) line("obsgw_upstream_retries_total{{upstream=\"{}\"}} {}\n", prom_label(key), n);

  out += "# HELP obsgw_rate_limited_total Requests refused by a rate limit, by limit name.\n"
         "# TYPE obsgw_rate_limited_total counter\n";
  for (const auto& [key, n] : rate_limited.snapshot()) line("obsgw_rate_limited_total{{limit=\"{}\"}} {}\n", prom_label(key), n);
  out += "# HELP obsgw_rate_limit_store_errors_total Decisions a rate-limit store could not make in time, by store.\n"
         "# TYPE obsgw_rate_limit_store_errors_total counter\n";
  for (const auto& [key, n] : limit_store_errors.snapshot())
    line("obsgw_rate_limit_store_errors_total{{store=\"{}\"}} {}\n", prom_label(key), n);
  {
    std::array<std::uint64_t, kStoreBuckets.size() + 1> buckets{};
    std::uint64_t sum_ns = 0;
    for (const auto& s : store_) {
      for (std::size_t b = 0; b < buckets.size(); ++b) buckets[b] += s.latency[b].load(relaxed);
      sum_ns += s.latency_sum_ns.load(relaxed);
    }
    out += "# HELP obsgw_rate_limit_store_duration_seconds Round trips of rate-limit decisions to a shared store (Redis).\n"
           "# TYPE obsgw_rate_limit_store_duration_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < kStoreBuckets.size(); ++b) {
      cumulative += buckets[b];
      line("obsgw_rate_limit_store_duration_seconds_bucket{{le=\"{}\"}} {}\n", kStoreBuckets[b], cumulative);
    }
    cumulative += buckets.back();
    line("obsgw_rate_limit_store_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
    line("obsgw_rate_limit_store_duration_seconds_sum {}\n", static_cast<double>(sum_ns) / 1e9);
    line("obsgw_rate_limit_store_duration_seconds_count {}\n", cumulative);
  }
  out += "# HELP obsgw_quota_exceeded_total Requests over an alert-only quota (they passed), by quota.\n"
         "# TYPE obsgw_quota_exceeded_total counter\n";
  for (const auto& [key, n] : quota_exceeded.snapshot()) line("obsgw_quota_exceeded_total{{quota=\"{}\"}} {}\n", prom_label(key), n);
  line("# HELP obsgw_rate_limit_buckets_dropped_total In-process rate-limit buckets dropped at the table's cap.\n"
       "# TYPE obsgw_rate_limit_buckets_dropped_total counter\nobsgw_rate_limit_buckets_dropped_total {}\n",
       limit_buckets_dropped.load(relaxed));

  std::uint64_t jwt_hits = 0, jwt_misses = 0, jwt_verified = 0, opaque_hits = 0, opaque_misses = 0;
  for (const auto& a : auth_) {
    jwt_hits += a.jwt_cache_hits.load(relaxed);
    jwt_misses += a.jwt_cache_misses.load(relaxed);
    jwt_verified += a.jwt_verified.load(relaxed);
    opaque_hits += a.opaque_cache_hits.load(relaxed);
    opaque_misses += a.opaque_cache_misses.load(relaxed);
  }
  line("# HELP obsgw_token_cache_lookups_total Lookups in the verified-token caches, by cache and result.\n"
       "# TYPE obsgw_token_cache_lookups_total counter\n"
       "obsgw_token_cache_lookups_total{{cache=\"jwt\",result=\"hit\"}} {}\n"
       "obsgw_token_cache_lookups_total{{cache=\"jwt\",result=\"miss\"}} {}\n"
       "obsgw_token_cache_lookups_total{{cache=\"opaque\",result=\"hit\"}} {}\n"
       "obsgw_token_cache_lookups_total{{cache=\"opaque\",result=\"miss\"}} {}\n",
       jwt_hits, jwt_misses, opaque_hits, opaque_misses);
  line("# HELP obsgw_jwt_verified_total JWT signatures verified (cache misses that passed).\n"
       "# TYPE obsgw_jwt_verified_total counter\nobsgw_jwt_verified_total {}\n", jwt_verified);
  out += "# HELP obsgw_key_fetches_total Fetches of identity providers' key sets, by source and result.\n"
         "# TYPE obsgw_key_fetches_total counter\n";
  for (const auto& [key, n] : key_fetches.snapshot()) {
    auto sep = key.find('\x1f');
    line("obsgw_key_fetches_total{{source=\"{}\",result=\"{}\"}} {}\n", prom_label(key.substr(0, sep)),
         prom_label(sep == std::string::npos ? "" : key.substr(sep + 1)), n);
  }
  out += "# HELP obsgw_token_checks_total Calls to introspection and userinfo endpoints, by endpoint and result.\n"
         "# TYPE obsgw_token_checks_total counter\n";
  for (const auto& [key, n] : token_checks.snapshot()) {
    auto sep = key.find('\x1f');
    line("obsgw_token_checks_total{{endpoint=\"{}\",result=\"{}\"}} {}\n", prom_label(key.substr(0, sep)),
         prom_label(sep == std::string::npos ? "" : key.substr(sep + 1)), n);
  }

  out += "# HELP obsgw_browser_logins_total Browser sign-in callbacks and sign-outs, by result.\n"
         "# TYPE obsgw_browser_logins_total counter\n";
  for (const auto& [key, n] : browser_logins.snapshot())
    line("obsgw_browser_logins_total{{result=\"{}\"}} {}\n", prom_label(key), n);

  std::uint64_t accepted = 0;
  for (const auto& s : conn_) accepted += s.accepted.load(relaxed);
  line("# HELP obsgw_active_connections Client connections open now.\n# TYPE obsgw_active_connections gauge\n"
       "obsgw_active_connections {}\n", active_connections());
  line("# HELP obsgw_connections_total Client connections accepted.\n# TYPE obsgw_connections_total counter\n"
       "obsgw_connections_total {}\n", accepted);
  line("# HELP obsgw_connections_refused_total Connections refused because max_connections was reached.\n"
       "# TYPE obsgw_connections_refused_total counter\nobsgw_connections_refused_total {}\n", refused_connections.load(relaxed));
  line("# HELP obsgw_parse_errors_total Requests refused as malformed before routing.\n"
       "# TYPE obsgw_parse_errors_total counter\nobsgw_parse_errors_total {}\n", parse_errors.load(relaxed));
  line("# HELP obsgw_config_reloads_total Configuration reloads, by result.\n# TYPE obsgw_config_reloads_total counter\n"
       "obsgw_config_reloads_total{{result=\"success\"}} {}\nobsgw_config_reloads_total{{result=\"failure\"}} {}\n",
       reloads_ok.load(relaxed), reloads_failed.load(relaxed));
  line("# HELP obsgw_log_lines_dropped_total Log lines dropped because the log writer fell behind.\n"
       "# TYPE obsgw_log_lines_dropped_total counter\nobsgw_log_lines_dropped_total {}\n", log_lines_dropped.load(relaxed));
  line("# HELP obsgw_start_time_seconds Start time of the process since the Unix epoch.\n"
       "# TYPE obsgw_start_time_seconds gauge\nobsgw_start_time_seconds {}\n",
       std::chrono::duration_cast<std::chrono::seconds>(started.time_since_epoch()).count());
  return out;
}

void Metrics::observe_limit_store(std::chrono::steady_clock::duration d) noexcept {
  auto& s = store_[shard_index()];
  const double seconds = std::chrono::duration<double>(d).count();
  std::size_t b = 0;
  while (b < kStoreBuckets.size() && seconds > kStoreBuckets[b]) ++b;
  s.latency[b].fetch_add(1, relaxed);
  s.latency_sum_ns.fetch_add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()), relaxed);
}

void Metrics::set_region(std::string region) {
  std::lock_guard lock(routes_mutex_);
  region_ = std::move(region);
}

std::string Metrics::render_stats_json() const {
  std::map<std::string, std::shared_ptr<RouteCounters>> routes;
  std::string region;
  {
    std::lock_guard lock(routes_mutex_);
    routes = routes_;
    region = region_;
  }
  std::uint64_t total = 0, forwarded = 0;
  std::string per_route = "{";
  bool first = true;
  for (const auto& [name, r] : routes) {
    auto t = sum(*r);
    total += t.requests;
    forwarded += t.forwarded;
    if (!first) per_route += ',';
    first = false;
    util::append_json_string(per_route, name);
    fmt::format_to(std::back_inserter(per_route), ":{{\"requests\":{},\"forwarded\":{},\"bytes_in\":{},\"bytes_out\":{},\"status\":{{",
                   t.requests, t.forwarded, t.bytes_in, t.bytes_out);
    bool f2 = true;
    for (std::size_t i = 0; i < kStatusSlots; ++i) {
      if (!t.by_status[i]) continue;
      if (!f2) per_route += ',';
      f2 = false;
      fmt::format_to(std::back_inserter(per_route), "\"{}\":{}", status_label(i), t.by_status[i]);
    }
    per_route += "}}";
  }
  per_route += '}';
  std::string rejected = "{";
  std::uint64_t rejected_total = 0, rate_limited_total = 0, blocked = 0;
  first = true;
  for (const auto& [code, n] : rejections.snapshot()) {
    if (code == "rate_limited" || code == "quota_exceeded") rate_limited_total += n;
    if (code == "ip_denied" || code == "ip_not_allowed") blocked += n;
    if (!first) rejected += ',';
    first = false;
    util::append_json_string(rejected, code);
    fmt::format_to(std::back_inserter(rejected), ":{}", n);
    rejected_total += n;
  }
  rejected += '}';
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - started).count();
  std::string region_json;
  util::append_json_string(region_json, region);
  return fmt::format(
      "{{\"total_requests\":{},\"forwarded\":{},\"rate_limited\":{},\"blocked\":{},\"active_clients\":{},"
      "\"region\":{},\"rejected\":{},\"rejected_by_reason\":{},\"parse_errors\":{},"
      "\"active_connections\":{},\"refused_connections\":{},\"uptime_seconds\":{},\"config_reloads\":{{\"success\":{},"
      "\"failure\":{}}},\"routes\":{}}}",
      total, forwarded, rate_limited_total, blocked, estimate_active_clients(), region.empty() ? "null" : region_json,
      rejected_total, rejected, parse_errors.load(relaxed), active_connections(), refused_connections.load(relaxed),
      uptime, reloads_ok.load(relaxed), reloads_failed.load(relaxed), per_route);
}

}  // namespace obsgw::detail
