#pragma once

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace obsgw::util {

// Spare objects kept for the memory they own (I/O buffers, parsed heads), for one thread, so that busy connections
// take and return them without malloc while idle ones hold none.
//
// The pool follows the load: it keeps as many spares as the thread's peak of objects in use needed (up to
// `max_spare`), and trim() frees those that stayed unused since the previous trim, so memory returns after a burst.
// give_back() calls trim() itself when kTrimInterval has passed (checking the clock once per kTrimCheckEvery calls);
// an io thread also calls it on a timer, so that a burst followed by silence does not keep its peak either.
//
// Not thread-safe: one pool per thread (thread_local), and every object goes back to the thread it came from.
template <class T>
class SparePool {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>,
                "give_back() and take() must not throw");
  using clock = std::chrono::steady_clock;

 public:
  static constexpr std::chrono::seconds kTrimInterval{10};

  explicit SparePool(std::size_t max_spare) noexcept : max_spare_(max_spare) {}

  // Moves a spare into `out` and returns true; false when there is none (`out` is left alone).
  bool take(T& out) noexcept {
    if (list_.empty()) return false;
    out = std::move(list_.back());
    list_.pop_back();
    if (list_.size() < low_water_) low_water_ = list_.size();
    return true;
  }

  // Keeps `v` for a later take(), or destroys it when the pool is full (or its list cannot grow).
  void give_back(T&& v) noexcept {
    T mine = std::move(v);  // destroyed at return unless kept
    if (list_.size() >= max_spare_) return;
    try {
      list_.push_back(std::move(mine));
    } catch (...) {
      return;
    }
    if (++gives_ % kTrimCheckEvery == 0 && clock::now() >= next_trim_) trim();
  }

  // Frees the spares no take() needed since the previous trim.
  void trim() noexcept {
    next_trim_ = clock::now() + kTrimInterval;
    list_.resize(list_.size() - low_water_);
    low_water_ = list_.size();
  }

  std::size_t size() const noexcept { return list_.size(); }

 private:
  static constexpr std::size_t kTrimCheckEvery = 256;

  std::vector<T> list_;
  std::size_t low_water_ = 0;  // the fewest spares since the last trim: that many were never needed
  std::size_t max_spare_;
  std::size_t gives_ = 0;
  clock::time_point next_trim_ = clock::now() + kTrimInterval;
};

}  // namespace obsgw::util
