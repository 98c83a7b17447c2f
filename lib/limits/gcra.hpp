#pragma once
// The generic cell rate algorithm for one bucket. A bucket is its theoretical arrival time (TAT): the moment it
// would be empty again. A unit of cost moves the TAT one emission interval (period / rate) later; a request is
// let in while the TAT stays within `tolerance` (interval × burst) of now. The Redis script (redis_scripts.cpp)
// does the same arithmetic; keep them in step.

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace obsgw::limits {

struct GcraStep {
  bool allowed = false;
  std::int64_t new_tat = 0;      // store this when allowed
  double remaining = 0;          // units that could still pass now
  std::int64_t reset_ns = 0;     // until the bucket is full again
  std::int64_t retry_after_ns = 0;  // when refused: until this request would fit
};

// `force`: charge even beyond the tolerance (a body's real size, known only after it was let in).
inline GcraStep gcra_step(std::int64_t stored_tat, std::int64_t now, double interval, double tolerance, double cost,
                          bool force) noexcept {
  GcraStep s;
  const std::int64_t tat = std::max(stored_tat, now);
  // Bounded so that a huge forced charge (a body's size) cannot overflow: a century of debt is plenty.
  constexpr double kMaxStep = 3.2e18;
  const std::int64_t new_tat = tat + std::llround(std::clamp(cost * interval, -kMaxStep, kMaxStep));
  const std::int64_t ahead = new_tat - now;
  const std::int64_t tol = std::llround(tolerance);
  if (ahead > tol && !force) {
    s.retry_after_ns = ahead - tol;
    s.remaining = std::max(0.0, std::floor((tolerance - static_cast<double>(tat - now)) / interval));
    s.reset_ns = tat - now;
    return s;
  }
  s.allowed = true;
  s.new_tat = new_tat;
  s.remaining = std::max(0.0, std::floor((tolerance - static_cast<double>(ahead)) / interval));
  s.reset_ns = ahead;
  return s;
}

}  // namespace obsgw::limits
