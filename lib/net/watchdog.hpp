#pragma once
// A deadline for the I/O of one connection: when it passes, the watched transports' pending operations are
// cancelled. Moving the deadline costs a clock read; the timer is only re-armed when it must fire earlier.
// This is cheaper than racing every read against a timer.

#include <chrono>
#include <memory>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include "obsgw/transport.hpp"

namespace obsgw::net {

// The monotonic clock at a few milliseconds' resolution (CLOCK_MONOTONIC_COARSE): several times cheaper to
// read than steady_clock, on the same time base, and precise enough for I/O deadlines. A coarse reading lags
// the precise one by at most one tick, so a deadline computed from it can come up to one tick early.
std::chrono::steady_clock::time_point coarse_now() noexcept;

class Watchdog {
 public:
  using clock = std::chrono::steady_clock;

  explicit Watchdog(const asio::any_io_executor& ex);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // From now on, cancel `a` (and `b`) if `timeout` passes before the next arm()/disarm().
  void arm(std::chrono::milliseconds timeout, Transport* a, Transport* b = nullptr);
  void disarm() noexcept;
  // True when the last armed deadline passed (and cancelled the transports).
  bool expired() const noexcept;

 private:
  struct State;
  static void schedule(const std::shared_ptr<State>& s);
  std::shared_ptr<State> state_;
};

}  // namespace obsgw::net
