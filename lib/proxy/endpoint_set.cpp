#include "proxy/endpoint_set.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "obsgw/server_options.hpp"
#include "server/metrics.hpp"
#include "util/event_log.hpp"

namespace obsgw::proxy {

namespace {
std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

EndpointSet::EndpointSet(const std::string& upstream, const std::string& default_host, std::uint16_t default_port,
                         const std::vector<std::string>& endpoints, UpstreamOptions::Balance balance, OutlierOptions outlier)
    : upstream_(upstream), balance_(balance), outlier_(outlier) {
  auto add = [&](std::string host, std::uint16_t port) {
    auto e = std::make_unique<EndpointState>();
    e->label = host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
    e->host = std::move(host);
    e->port = port;
    endpoints_.push_back(std::move(e));
  };
  if (endpoints.empty()) add(default_host, default_port);
  for (const auto& text : endpoints) {
    auto l = parse_listen_address(text);
    if (!l || l->host.empty() || l->port == 0)
      throw std::invalid_argument(fmt::format("upstream \"{}\": endpoint \"{}\" is not host:port", upstream, text));
    add(l->host, l->port);
  }
  if (endpoints_.size() > 64) throw std::invalid_argument(fmt::format("upstream \"{}\": at most 64 endpoints", upstream));
}

bool EndpointSet::available(std::size_t i, std::int64_t now) const noexcept {
  const auto& e = *endpoints_[i];
  return e.healthy.load(std::memory_order_relaxed) && e.ejected_until_ns.load(std::memory_order_relaxed) <= now;
}

std::size_t EndpointSet::pick(ThreadView& view, std::uint64_t tried) const noexcept {
  const std::size_t n = endpoints_.size();
  if (n == 1) return 0;
  if (view.outstanding.size() != n) view.outstanding.assign(n, 0);
  const std::int64_t now = now_ns();
  auto is_tried = [&](std::size_t i) { return i < 64 && (tried >> i) & 1; };
  // Three passes, each less choosy: available and untried; available; anything untried.
  for (int pass = 0; pass < 3; ++pass) {
    std::size_t best = n;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (view.next + k) % n;
      if (pass < 2 && !available(i, now)) continue;
      if (pass != 1 && is_tried(i)) continue;
      if (balance_ == UpstreamOptions::Balance::round_robin) {
        best = i;
        break;
      }
      if (best == n || view.outstanding[i] < view.outstanding[best]) best = i;
    }
    if (best != n) {
      // Only a request's first pick moves the rotation: a retry moving it too would start the next request on
      // the endpoint that just failed.
      if (tried == 0) view.next = best + 1;
      return best;
    }
  }
  return tried == 0 ? view.next++ % n : view.next % n;
}

void EndpointSet::record_success(std::size_t i) noexcept {
  auto& e = *endpoints_[i];
  if (e.consecutive_failures.load(std::memory_order_relaxed) != 0) e.consecutive_failures.store(0, std::memory_order_relaxed);
}

bool EndpointSet::record_failure(std::size_t i) noexcept {
  if (outlier_.consecutive_failures == 0) return false;
  auto& e = *endpoints_[i];
  if (e.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1 < outlier_.consecutive_failures) return false;
  e.consecutive_failures.store(0, std::memory_order_relaxed);
  const std::int64_t until = now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(outlier_.ejection).count();
  e.ejected_until_ns.store(until, std::memory_order_relaxed);
  detail::Metrics::instance().upstream_errors.add(upstream_ + '\x1f' + "ejected");
  try {
    util::log_event(LogLevel::warn, "upstream endpoint ejected after consecutive failures",
                    {{"upstream", upstream_}, {"endpoint", e.label}, {"failures", outlier_.consecutive_failures},
                     {"ejection_ms", static_cast<std::int64_t>(outlier_.ejection.count())}});
  } catch (...) {
  }
  return true;
}

void RetryBudget::refill() noexcept {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min(cap(), tokens_ + elapsed * min_per_second_);
}

}  // namespace obsgw::proxy
