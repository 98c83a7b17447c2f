#include "obsgw/rate_limiter.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "obsgw/limit_store.hpp"
#include "obsgw/router.hpp"
#include "server/metrics.hpp"

namespace obsgw {

namespace {

constexpr std::size_t kMaxLimits = 16;
constexpr std::size_t kMaxHeaderKey = 256;

const char* key_name(LimitKey k) {
  switch (k) {
    case LimitKey::global: return "global";
    case LimitKey::client_ip: return "client_ip";
    case LimitKey::tenant: return "tenant";
    case LimitKey::subject: return "subject";
    case LimitKey::route: return "route";
    case LimitKey::header: return "header";
  }
  return "?";
}

std::string format_number(double v) { return v == std::floor(v) ? fmt::format("{}", static_cast<long long>(v)) : fmt::format("{:g}", v); }

double parse_number(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : 0;
}

// The client's part of a bucket key: its address, IPv6 reduced to `v6_prefix` bits (one host usually has a whole
// /64; keying on /128 would hand it 2^64 buckets).
void append_client(const asio::ip::address& a, unsigned v6_prefix, const std::string& text, std::string& key) {
  if (a.is_v4() || v6_prefix >= 128) {
    key.append(text);
    return;
  }
  auto bytes = a.to_v6().to_bytes();
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned keep = v6_prefix > i * 8 ? std::min(8u, v6_prefix - i * 8) : 0;
    bytes[i] &= static_cast<unsigned char>(keep == 8 ? 0xff : (0xff00u >> keep) & 0xff);
  }
  key.append(asio::ip::make_address_v6(bytes).to_string()).append("/").append(std::to_string(v6_prefix));
}

constexpr std::array<std::string_view, 4> kRateLimitHeaders = {"RateLimit-Limit", "RateLimit-Remaining",
                                                               "RateLimit-Reset", "RateLimit-Policy"};

long long ceil_seconds(std::int64_t ns) { return ns <= 0 ? 0 : (ns + 999'999'999) / 1'000'000'000; }

struct Limit {
  LimitSpec spec;
  double interval_ns = 0;
  double tolerance_ns = 0;
  double burst = 0;
  std::string limit_value;   // RateLimit-Limit
  std::string policy_value;  // RateLimit-Policy
  std::string description;   // for 429 messages
};

// The charges of one request, built in place (no allocation once the buffers have grown). A limit keyed by tenant
// charges each tenant of a federated query (a|b) separately, so `limit_of` maps a charge back to its limit.
constexpr std::size_t kMaxCharges = 16;
struct KeyBuffers {
  std::array<std::string, kMaxCharges> keys;
  std::array<LimitCharge, kMaxCharges> charges;
  std::array<std::size_t, kMaxCharges> limit_of{};
};

class GcraRateLimiter final : public RateLimiter {
 public:
  explicit GcraRateLimiter(RateLimitOptions o) : options_(std::move(o)) {
    if (options_.limits.empty()) throw std::invalid_argument("a rate limiter needs at least one limit");
    if (options_.limits.size() > kMaxLimits) throw std::invalid_argument(fmt::format("at most {} limits per policy", kMaxLimits));
    if (!options_.store) options_.store = local_limit_store();
    admit_phase_ = true;
    for (auto& spec : options_.limits) {
      if (spec.name.empty()) throw std::invalid_argument("every limit needs a name");
      if (!(spec.rate > 0) || !std::isfinite(spec.rate)) throw std::invalid_argument(fmt::format("limit \"{}\": rate must be > 0", spec.name));
      if (spec.period.count() <= 0) throw std::invalid_argument(fmt::format("limit \"{}\": period must be > 0", spec.name));
      if (spec.burst < 0 || !std::isfinite(spec.burst)) throw std::invalid_argument(fmt::format("limit \"{}\": burst must be >= 0", spec.name));
      if (spec.key == LimitKey::header && spec.header.empty())
        throw std::invalid_argument(fmt::format("limit \"{}\": key \"header\" needs a header name", spec.name));
      Limit l;
      l.spec = spec;
      l.burst = spec.burst > 0 ? spec.burst : spec.rate;
      l.interval_ns = static_cast<double>(std::chrono::nanoseconds(spec.period).count()) / spec.rate;
      l.tolerance_ns = l.interval_ns * l.burst;
      if (l.interval_ns < 1e-3) throw std::invalid_argument(fmt::format("limit \"{}\": rate too high for its period", spec.name));
      if (l.tolerance_ns > 1e18) throw std::invalid_argument(fmt::format("limit \"{}\": burst × period is too long", spec.name));
      if (spec.ipv6_prefix > 128) throw std::invalid_argument(fmt::format("limit \"{}\": ipv6_prefix is at most 128", spec.name));
      const double period_s = static_cast<double>(spec.period.count()) / 1000.0;
      l.limit_value = format_number(std::floor(l.burst));
      l.policy_value = fmt::format("{};w={}", format_number(spec.rate), format_number(period_s));
      if (l.burst != spec.rate) l.policy_value += fmt::format(";burst={}", format_number(l.burst));
      l.description = fmt::format("{} {} per {} s{}, per {}", format_number(spec.rate),
                                  spec.unit == LimitUnit::bytes ? "bytes" : "requests", format_number(period_s),
                                  l.burst != spec.rate ? fmt::format(" (bursts of {})", format_number(l.burst)) : "",
                                  spec.key == LimitKey::header ? "header " + spec.header : key_name(spec.key));
      if (spec.key == LimitKey::tenant || spec.key == LimitKey::subject) admit_phase_ = false;
      if (spec.unit == LimitUnit::bytes) has_bytes_ = true;
      limits_.push_back(std::move(l));
    }
  }

  Phase phase() const noexcept override { return admit_phase_ ? Phase::admit : Phase::limit; }
  std::string_view name() const noexcept override { return "rate_limit"; }

  Verdict on_request(Exchange& ex) const override {
    thread_local KeyBuffers buffers;  // used only within this synchronous call
    std::size_t n = 0;
    if (auto early = fill(ex, buffers, n)) return std::move(*early);
    LimitStore::Decision d;
    if (!options_.store->try_decide({buffers.charges.data(), n}, d)) return Verdict::suspend();
    return conclude(ex, buffers, n, d);
  }

  asio::awaitable<Verdict> on_request_async(Exchange& ex) const override {
    auto buffers = std::make_unique<KeyBuffers>();  // lives across the suspension, unlike the thread's buffers
    std::size_t n = 0;
    if (auto early = fill(ex, *buffers, n)) co_return std::move(*early);
    std::span<LimitCharge> charges(buffers->charges.data(), n);
    const KeyBuffers& b = *buffers;
    LimitStore::Decision d = co_await options_.store->decide(charges);
    if (d.outcome == LimitStore::Outcome::unavailable) {
      detail::Metrics::instance().limit_store_errors.add(std::string(options_.store->kind()));
      switch (options_.on_store_failure) {
        case StoreFailureMode::fail_open: co_return Verdict::proceed();
        case StoreFailureMode::fail_closed:
          co_return Verdict::reject(503, "rate_limit_unavailable", "the rate-limit store cannot decide now; retry shortly")
              .with_header("Retry-After", "1");
        case StoreFailureMode::local: local_limit_store()->try_decide(charges, d); break;
      }
    }
    co_return conclude(ex, b, n, d);
  }

  void on_complete(const Exchange& ex) const noexcept override {
    // Another limiter refused what this one admitted: its charges are given back, so that a client already
    // being refused (say by its own per-IP limit) does not drain a budget shared with everyone else.
    const bool refund = ex.outcome.rejecting_policy && ex.outcome.rejecting_policy != this &&
                        ex.outcome.rejected_by == "rate_limited";
    // A chunked body was let in on a bucket not in debt; now its real size is charged.
    const bool charge_body = has_bytes_ && ex.request().framing == BodyFraming::chunked && ex.outcome.bytes_in > 0;
    if (!refund && !charge_body) return;
    try {
      thread_local KeyBuffers buffers;
      std::size_t n = 0;
      for (std::size_t i = 0; i < limits_.size(); ++i) {
        const bool bytes = limits_[i].spec.unit == LimitUnit::bytes;
        double cost = 0;
        if (refund) cost = bytes ? -static_cast<double>(ex.request().framing == BodyFraming::content_length ? ex.request().content_length : 0) : -1;
        else if (bytes) cost = static_cast<double>(ex.outcome.bytes_in);
        if (cost == 0) continue;
        add_charges(limits_[i], i, ex, cost, buffers, n);
      }
      for (std::size_t k = 0; k < n; ++k) buffers.charges[k].force = true;
      if (n) options_.store->record({buffers.charges.data(), n});
    } catch (...) {
    }
  }

 private:
  // Appends the charges of limit `l` (index `li`): one, or one per tenant for a tenant-keyed limit.
  void add_charges(const Limit& l, std::size_t li, const Exchange& ex, double cost, KeyBuffers& b, std::size_t& n) const {
    const std::size_t count = l.spec.key == LimitKey::tenant ? std::max<std::size_t>(1, ex.tenants.size()) : 1;
    for (std::size_t t = 0; t < count && n < kMaxCharges; ++t) {
      build_key(l, ex, t, b.keys[n]);
      auto& c = b.charges[n];
      c = LimitCharge{};
      c.key = b.keys[n];
      c.interval_ns = l.interval_ns;
      c.tolerance_ns = l.tolerance_ns;
      c.cost = cost;
      b.limit_of[n] = li;
      ++n;
    }
  }

  void build_key(const Limit& l, const Exchange& ex, std::size_t tenant, std::string& key) const {
    key.assign(l.spec.name);
    key.push_back('\x1f');
    switch (l.spec.key) {
      case LimitKey::global: break;
      case LimitKey::client_ip: append_client(ex.client_address(), l.spec.ipv6_prefix, ex.client_ip(), key); break;
      case LimitKey::tenant: key.append(tenant < ex.tenants.size() ? std::string_view(ex.tenants[tenant]) : std::string_view("-")); break;
      case LimitKey::subject:
        if (!ex.identity || !ex.identity->authenticated()) key.push_back('-');
        else key.append(!ex.identity->subject.empty() ? ex.identity->subject : ex.identity->client_id);
        break;
      case LimitKey::route: key.append(ex.route() ? std::string_view(ex.route()->name) : std::string_view("-")); break;
      case LimitKey::header: {
        auto v = ex.request().headers.get(l.spec.header);
        key.append(v ? v->substr(0, kMaxHeaderKey) : std::string_view("-"));
        break;
      }
    }
  }

  // Builds the charges; returns a verdict when the request is refused before any store is asked.
  std::optional<Verdict> fill(const Exchange& ex, KeyBuffers& b, std::size_t& n) const {
    const auto& req = ex.request();
    for (std::size_t i = 0; i < limits_.size(); ++i) {
      const Limit& l = limits_[i];
      double cost = 1;
      if (l.spec.unit == LimitUnit::bytes) {
        cost = req.framing == BodyFraming::content_length ? static_cast<double>(req.content_length) : 0;
        if (cost > l.burst)
          return Verdict::reject(413, "body_exceeds_rate_limit",
                                 fmt::format("the body ({} bytes) is larger than limit \"{}\" lets through at once ({})",
                                             req.content_length, l.spec.name, l.description))
              .with_detail("limit", l.spec.name);
      }
      add_charges(l, i, ex, cost, b, n);
    }
    return std::nullopt;
  }

  Verdict conclude(Exchange& ex, const KeyBuffers& b, std::size_t n, const LimitStore::Decision& d) const {
    if (d.outcome == LimitStore::Outcome::refused) {
      // Only the refusing limit speaks: figures an earlier limiter left for an admitted response would contradict it.
      ex.response_headers.remove_all(kRateLimitHeaders);
      const Limit& l = limits_[b.limit_of[d.refused_index]];
      const LimitCharge& c = b.charges[d.refused_index];
      detail::Metrics::instance().rate_limited.add(l.spec.name);
      const long long retry = std::max(1LL, ceil_seconds(c.retry_after_ns));
      return Verdict::reject(429, "rate_limited",
                             fmt::format("limit \"{}\" ({}) exceeded; retry in {} s", l.spec.name, l.description, retry))
          .with_detail("limit", l.spec.name)
          .with_detail("retry_after_s", retry)
          .with_header("Retry-After", std::to_string(retry))
          .with_header("RateLimit-Limit", l.limit_value)
          .with_header("RateLimit-Remaining", "0")
          .with_header("RateLimit-Reset", std::to_string(std::max(retry, ceil_seconds(c.reset_ns))))
          .with_header("RateLimit-Policy", l.policy_value);
    }
    if (options_.response_headers && n > 0) {
      // The limit closest to refusing speaks for all.
      std::size_t tightest = 0;
      double best = 2;
      for (std::size_t i = 0; i < n; ++i) {
        double share = b.charges[i].remaining / limits_[b.limit_of[i]].burst;
        if (share < best) best = share, tightest = i;
      }
      const Limit& l = limits_[b.limit_of[tightest]];
      const auto& charges = b.charges;
      // Several limiters on one route: the one closest to refusing keeps the headers.
      const auto prev_limit = ex.response_headers.get("RateLimit-Limit");
      if (prev_limit) {
        double prev_share = parse_number(ex.response_headers.get("RateLimit-Remaining").value_or("")) / std::max(1.0, parse_number(*prev_limit));
        if (prev_share <= best) return Verdict::proceed();
        ex.response_headers.remove_all(kRateLimitHeaders);
      }
      char remaining[24], reset[24];
      auto r1 = std::to_chars(remaining, remaining + sizeof remaining, static_cast<long long>(charges[tightest].remaining)).ptr;
      auto r2 = std::to_chars(reset, reset + sizeof reset, ceil_seconds(charges[tightest].reset_ns)).ptr;
      // None of the four is there now: adding is setting, without a search per header. One reservation instead
      // of the reallocations that four adds to a fresh header list would cause one by one.
      constexpr std::size_t kNames = sizeof "RateLimit-Limit" + sizeof "RateLimit-Remaining" +
                                     sizeof "RateLimit-Reset" + sizeof "RateLimit-Policy" - 4;
      ex.response_headers.reserve(ex.response_headers.size() + 4,
                                  ex.response_headers.byte_size() + kNames + l.limit_value.size() +
                                      l.policy_value.size() + static_cast<std::size_t>(r1 - remaining) +
                                      static_cast<std::size_t>(r2 - reset));
      ex.response_headers.add("RateLimit-Limit", l.limit_value);
      ex.response_headers.add("RateLimit-Remaining", std::string_view(remaining, static_cast<std::size_t>(r1 - remaining)));
      ex.response_headers.add("RateLimit-Reset", std::string_view(reset, static_cast<std::size_t>(r2 - reset)));
      ex.response_headers.add("RateLimit-Policy", l.policy_value);
    }
    return Verdict::proceed();
  }

  RateLimitOptions options_;
  std::vector<Limit> limits_;
  bool admit_phase_ = true;
  bool has_bytes_ = false;
};

}  // namespace

std::shared_ptr<const RateLimiter> make_rate_limiter(RateLimitOptions options) {
  return std::make_shared<GcraRateLimiter>(std::move(options));
}

}  // namespace obsgw
