#pragma once
// The endpoints of one upstream and what is known of their health: active checks (healthy or not) and passive
// ejection (too many failures in a row). Shared by the io threads through atomics; the choice of an endpoint
// uses per-thread counts only (round-robin position, requests outstanding), so picking takes no lock.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "obsgw/forwarder.hpp"

namespace obsgw::proxy {

struct EndpointState {
  std::string host;
  std::uint16_t port = 0;
  std::string label;  // "host:port", for logs and metrics
  std::atomic<bool> healthy{true};                   // the active checks' verdict
  std::atomic<std::int64_t> ejected_until_ns{0};     // passive ejection, steady clock
  std::atomic<std::uint32_t> consecutive_failures{0};
  // Only the health checker touches these.
  unsigned check_passes = 0;
  unsigned check_failures = 0;
};

class EndpointSet {
 public:
  // Throws std::invalid_argument for an endpoint that is not host:port.
  EndpointSet(const std::string& upstream, const std::string& default_host, std::uint16_t default_port,
              const std::vector<std::string>& endpoints, UpstreamOptions::Balance balance, OutlierOptions outlier);

  std::size_t size() const noexcept { return endpoints_.size(); }
  EndpointState& at(std::size_t i) noexcept { return *endpoints_[i]; }
  const EndpointState& at(std::size_t i) const noexcept { return *endpoints_[i]; }

  // Per io thread: the round-robin position and requests outstanding per endpoint.
  struct ThreadView {
    std::size_t next = 0;
    std::vector<std::uint32_t> outstanding;
  };

  // The endpoint for the next try: among those healthy and not ejected, skipping `tried` (a bit per endpoint, the
  // first 64) while others remain; when none is available, any of them ("panic": better to try than to refuse).
  std::size_t pick(ThreadView& view, std::uint64_t tried) const noexcept;

  void record_success(std::size_t i) noexcept;
  // Counts a failure; ejects the endpoint at the threshold. Returns true when this failure ejected it.
  bool record_failure(std::size_t i) noexcept;

  const std::string& upstream() const noexcept { return upstream_; }

 private:
  bool available(std::size_t i, std::int64_t now_ns) const noexcept;

  std::string upstream_;
  std::vector<std::unique_ptr<EndpointState>> endpoints_;
  UpstreamOptions::Balance balance_;
  OutlierOptions outlier_;
};

// Retries allowed on one io thread: a bucket that gains `ratio` per request and `min_per_second` with time, and
// loses one per retry (Finagle's retry budget): under an outage retries stay a small share of the load.
class RetryBudget {
 public:
  RetryBudget(double ratio, double min_per_second) : ratio_(ratio), min_per_second_(min_per_second) {}
  void on_request() noexcept { tokens_ = std::min(cap(), tokens_ + ratio_); }
  bool can_retry() noexcept {
    refill();
    return tokens_ >= 1;
  }
  void spend() noexcept { tokens_ -= 1; }

 private:
  double cap() const noexcept { return std::max(10.0, min_per_second_ * 10); }
  void refill() noexcept;
  double ratio_, min_per_second_;
  double tokens_ = 10;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace obsgw::proxy
