#include "obsgw/quota.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>

#include "limits/quota_counter.hpp"
#include "policies/quota_report.hpp"
#include "server/metrics.hpp"
#include "util/event_log.hpp"
#include "util/json_escape.hpp"

namespace obsgw {

namespace {

using namespace std::chrono;

constexpr std::size_t kMaxTenantsCharged = 16;

struct Period {
  std::string id;           // "20261122" or "202611"
  std::int64_t start = 0;   // Unix seconds
  std::int64_t reset = 0;   // Unix seconds: when the next period starts
};

Period period_at(QuotaPeriod kind, std::int64_t now) {
  const auto today = floor<days>(sys_seconds{seconds{now}});
  const year_month_day ymd{today};
  Period p;
  if (kind == QuotaPeriod::day) {
    p.id = fmt::format("{:04}{:02}{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                       static_cast<unsigned>(ymd.day()));
    p.start = duration_cast<seconds>(today.time_since_epoch()).count();
    p.reset = duration_cast<seconds>((today + days{1}).time_since_epoch()).count();
  } else {
    const year_month first = ymd.year() / ymd.month();
    p.id = fmt::format("{:04}{:02}", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()));
    p.start = duration_cast<seconds>(sys_days{first / 1}.time_since_epoch()).count();
    p.reset = duration_cast<seconds>(sys_days{(first + months{1}) / 1}.time_since_epoch()).count();
  }
  return p;
}

std::string rfc3339(std::int64_t unix) {
  const auto t = sys_seconds{seconds{unix}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()), hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

std::int64_t unix_now() { return duration_cast<seconds>(system_clock::now().time_since_epoch()).count(); }

class Quota final : public Policy, public detail::QuotaReport {
 public:
  explicit Quota(QuotaOptions o) : options_(std::move(o)) {
    if (options_.name.empty() || options_.name.find(':') != std::string::npos)
      throw std::invalid_argument("a quota needs a name without ':'");
    counter_ = options_.redis ? limits::redis_quota_counter(*options_.redis) : limits::local_quota_counter();
    period_word_ = options_.period == QuotaPeriod::day ? "daily" : "monthly";
  }

  Phase phase() const noexcept override { return Phase::limit; }
  std::string_view name() const noexcept override { return "quota"; }

  Verdict on_request(Exchange& ex) const override {
    if (ex.tenants.empty()) return Verdict::proceed();
    if (options_.redis) return Verdict::suspend();
    const Period p = current_period();
    for (std::size_t i = 0; i < ex.tenants.size() && i < kMaxTenantsCharged; ++i) {
      limits::QuotaCharge c;
      if (!prepare(ex, ex.tenants[i], p, c)) continue;
      counter_->try_charge(c);
      if (auto v = conclude(ex, ex.tenants[i], p, c)) {
        undo(ex, i, p);  // the tenants before this one were charged for a request that is now refused
        return std::move(*v);
      }
    }
    return Verdict::proceed();
  }

  asio::awaitable<Verdict> on_request_async(Exchange& ex) const override {
    const Period p = current_period();
    for (std::size_t i = 0; i < ex.tenants.size() && i < kMaxTenantsCharged; ++i) {
      limits::QuotaCharge c;
      if (!prepare(ex, ex.tenants[i], p, c)) continue;
      if (!co_await counter_->charge(c, options_.on_store_failure != StoreFailureMode::fail_open)) {
        detail::Metrics::instance().limit_store_errors.add("redis");
        if (options_.on_store_failure == StoreFailureMode::fail_open) continue;
        if (options_.on_store_failure == StoreFailureMode::fail_closed)
          co_return Verdict::reject(503, "quota_unavailable", "the quota store cannot answer now; retry shortly")
              .with_header("Retry-After", "1");
        limits::local_quota_counter()->try_charge(c);
      }
      if (auto v = conclude(ex, ex.tenants[i], p, c)) {
        undo(ex, i, p);
        co_return std::move(*v);
      }
    }
    co_return Verdict::proceed();
  }

  void on_complete(const Exchange& ex) const noexcept override {
    if (ex.tenants.empty()) return;
    // A later policy refused a request this quota counted: a quota counts what was served.
    if (ex.outcome.rejecting_policy && ex.outcome.rejecting_policy != this) {
      try {
        undo(ex, std::min(ex.tenants.size(), kMaxTenantsCharged), current_period());
      } catch (...) {
      }
      return;
    }
    // A chunked body's size is known only now.
    if (ex.request().framing != BodyFraming::chunked || ex.outcome.bytes_in == 0) return;
    if (ex.outcome.rejected_by == "quota_exceeded") return;
    try {
      const Period p = current_period();
      for (std::size_t i = 0; i < ex.tenants.size() && i < kMaxTenantsCharged; ++i) {
        const QuotaLimits& l = limits_for(ex.tenants[i]);
        if (!l.bytes) continue;
        limits::QuotaCharge c;
        keys(ex.tenants[i], p, c);
        c.byte_cost = static_cast<std::int64_t>(ex.outcome.bytes_in);
        c.expire_at = p.reset + 86400;
        counter_->record(std::move(c));
      }
    } catch (...) {
    }
  }

  asio::awaitable<std::string> usage_json(std::string tenant) const override {
    const Period p = current_period();
    const QuotaLimits& l = limits_for(tenant);
    limits::QuotaCharge c;
    keys(tenant, p, c);
    c.enforce = false;  // costs 0: a read
    c.expire_at = p.reset + 86400;
    bool ok = counter_->try_charge(c) || co_await counter_->charge(c);
    if (!ok) co_return std::string();
    auto part = [](const std::optional<std::uint64_t>& limit, std::int64_t used) {
      if (!limit) return fmt::format("{{\"limit\":null,\"used\":{},\"remaining\":null}}", used);
      const auto lim = static_cast<std::int64_t>(*limit);
      return fmt::format("{{\"limit\":{},\"used\":{},\"remaining\":{}}}", lim, used, std::max<std::int64_t>(0, lim - used));
    };
    std::string out = "{\"name\":";
    util::append_json_string(out, options_.name);
    fmt::format_to(std::back_inserter(out),
                   ",\"period\":\"{}\",\"period_start\":\"{}\",\"mode\":\"{}\",\"store\":\"{}\",\"requests\":{},\"bytes\":{},"
                   "\"reset\":\"{}\",\"reset_seconds\":{}}}",
                   options_.period == QuotaPeriod::day ? "day" : "month", rfc3339(p.start),
                   options_.mode == QuotaMode::enforce ? "enforce" : "alert", options_.redis ? "redis" : "local",
                   part(l.requests, c.requests_used), part(l.bytes, c.bytes_used), rfc3339(p.reset),
                   std::max<std::int64_t>(0, p.reset - unix_now()));
    co_return out;
  }

 private:
  const QuotaLimits& limits_for(const std::string& tenant) const {
    auto it = options_.tenants.find(tenant);
    return it == options_.tenants.end() ? options_.limits : it->second;
  }

  // The period is recomputed when it ends, not on every request.
  Period current_period() const {
    // Keyed by the policy's serial, not its address: a policy of a later reload may reuse an address.
    thread_local std::unordered_map<std::uint64_t, Period> cache;
    const std::int64_t now = unix_now();
    Period& p = cache[serial_];
    if (p.id.empty() || now >= p.reset || now < p.start) p = period_at(options_.period, now);
    if (cache.size() > 64) {  // policies of retired configurations
      Period keep = p;
      cache.clear();
      cache[serial_] = keep;
      return keep;
    }
    return p;
  }

  void keys(const std::string& tenant, const Period& p, limits::QuotaCharge& c) const {
    const std::string base = fmt::format("quota:{}:{}:{}", options_.name, tenant, p.id);
    c.requests_key = base + ":requests";
    c.bytes_key = base + ":bytes";
  }

  // Takes back the charges of the first `count` tenants of this request.
  void undo(const Exchange& ex, std::size_t count, const Period& p) const {
    for (std::size_t i = 0; i < count && i < ex.tenants.size(); ++i) {
      limits::QuotaCharge c;
      if (!prepare(ex, ex.tenants[i], p, c)) continue;
      c.request_cost = -c.request_cost;
      c.byte_cost = -c.byte_cost;
      c.enforce = false;
      counter_->record(std::move(c));
    }
  }

  // Fills a charge for `tenant`; false when the tenant has no limit to count against.
  bool prepare(const Exchange& ex, const std::string& tenant, const Period& p, limits::QuotaCharge& c) const {
    const QuotaLimits& l = limits_for(tenant);
    if (!l.requests && !l.bytes) return false;
    keys(tenant, p, c);
    c.request_cost = 1;
    const auto& req = ex.request();
    c.byte_cost = req.framing == BodyFraming::content_length ? static_cast<std::int64_t>(req.content_length) : 0;
    c.request_limit = l.requests ? static_cast<std::int64_t>(*l.requests) : -1;
    c.byte_limit = l.bytes ? static_cast<std::int64_t>(*l.bytes) : -1;
    c.enforce = options_.mode == QuotaMode::enforce;
    c.expire_at = p.reset + 86400;  // kept a day past the period, so that its use can still be read
    return true;
  }

  std::optional<Verdict> conclude(Exchange& ex, const std::string& tenant, const Period& p, const limits::QuotaCharge& c) const {
    const std::int64_t reset_in = std::max<std::int64_t>(1, p.reset - unix_now());
    const QuotaLimits& l = limits_for(tenant);
    if (c.over && options_.mode == QuotaMode::enforce) {
      const bool requests = c.over & 1;
      const std::string what = requests ? fmt::format("{} requests", *l.requests) : fmt::format("{} bytes", *l.bytes);
      return Verdict::reject(429, "quota_exceeded",
                             fmt::format("tenant \"{}\" reached its {} quota of {} (\"{}\"); it resets at {}", tenant,
                                         period_word_, what, options_.name, rfc3339(p.reset)))
          .with_detail("quota", options_.name)
          .with_detail("tenant", tenant)
          .with_detail("exceeded", requests ? "requests" : "bytes")
          .with_detail("reset", rfc3339(p.reset))
          .with_detail("retry_after_s", static_cast<long long>(reset_in))
          .with_header("Retry-After", std::to_string(reset_in))
          .with_header("X-Quota-Reset", std::to_string(reset_in));
    }
    if (c.over) {
      const char* kinds = c.over == 3 ? "requests, bytes" : (c.over & 1) ? "requests" : "bytes";
      ex.response_headers.set("X-Quota-Exceeded", kinds);
      detail::Metrics::instance().quota_exceeded.add(options_.name);
      log_excess(tenant, kinds, c);
    }
    if (l.requests)
      ex.response_headers.set("X-Quota-Remaining-Requests",
                              std::to_string(std::max<std::int64_t>(0, static_cast<std::int64_t>(*l.requests) - c.requests_used)));
    if (l.bytes)
      ex.response_headers.set("X-Quota-Remaining-Bytes",
                              std::to_string(std::max<std::int64_t>(0, static_cast<std::int64_t>(*l.bytes) - c.bytes_used)));
    ex.response_headers.set("X-Quota-Reset", std::to_string(reset_in));
    return std::nullopt;
  }

  // Alert-only quotas log their excess at most once a minute per tenant (per io thread).
  void log_excess(const std::string& tenant, const char* kinds, const limits::QuotaCharge& c) const {
    thread_local std::unordered_map<std::string, std::int64_t> last_logged;
    const std::int64_t now = unix_now();
    const std::string key = options_.name + '\x1f' + tenant;
    auto& last = last_logged[key];
    if (now - last < 60) return;
    last = now;
    if (last_logged.size() > 10000) last_logged.clear();
    util::log_event(LogLevel::warn, "quota exceeded (alert only: requests still pass)",
                    {{"quota", options_.name}, {"tenant", tenant}, {"exceeded", kinds},
                     {"requests_used", c.requests_used}, {"bytes_used", c.bytes_used}});
  }

  static inline std::atomic<std::uint64_t> next_serial_{1};
  const std::uint64_t serial_ = next_serial_.fetch_add(1, std::memory_order_relaxed);
  QuotaOptions options_;
  std::shared_ptr<limits::QuotaCounter> counter_;
  const char* period_word_;
};

}  // namespace

std::shared_ptr<const Policy> make_quota(QuotaOptions options) { return std::make_shared<Quota>(std::move(options)); }

}  // namespace obsgw
