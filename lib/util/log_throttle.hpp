#pragma once
// At most one log line a second from one source shared by every io thread (a provider that is down would otherwise
// log once per request). Lock-free: the thread that wins the second logs, the others skip.

#include <atomic>
#include <chrono>

namespace obsgw::util {

class LogThrottle {
 public:
  bool allow() noexcept {
    using clock = std::chrono::steady_clock;
    const auto now = clock::now().time_since_epoch().count();
    auto last = last_.load(std::memory_order_relaxed);
    constexpr auto second = std::chrono::duration_cast<clock::duration>(std::chrono::seconds(1)).count();
    return now - last >= second && last_.compare_exchange_strong(last, now);
  }

 private:
  std::atomic<std::chrono::steady_clock::rep> last_{0};
};

}  // namespace obsgw::util
