#include "net/watchdog.hpp"

#include <time.h>

namespace obsgw::net {

std::chrono::steady_clock::time_point coarse_now() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

struct Watchdog::State {
  explicit State(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  clock::time_point deadline = clock::time_point::max();
  clock::time_point scheduled = clock::time_point::max();
  Transport* a = nullptr;
  Transport* b = nullptr;
  bool waiting = false;
  bool expired = false;
  bool dead = false;
};

Watchdog::Watchdog(const asio::any_io_executor& ex) : state_(std::make_shared<State>(ex)) {}

Watchdog::~Watchdog() {
  state_->dead = true;
  state_->a = state_->b = nullptr;
  state_->timer.cancel();
}

void Watchdog::arm(std::chrono::milliseconds timeout, Transport* a, Transport* b) {
  auto& s = *state_;
  s.deadline = coarse_now() + timeout;
  s.a = a;
  s.b = b;
  s.expired = false;
  if (!s.waiting) schedule(state_);
  else if (s.deadline < s.scheduled) s.timer.cancel();  // the handler reschedules at the earlier deadline
}

void Watchdog::disarm() noexcept { state_->deadline = clock::time_point::max(); }

bool Watchdog::expired() const noexcept { return state_->expired; }

void Watchdog::schedule(const std::shared_ptr<State>& s) {
  s->waiting = true;
  s->scheduled = s->deadline;
  s->timer.expires_at(s->deadline);
  s->timer.async_wait([s](std::error_code) {
    s->waiting = false;
    if (s->dead || s->deadline == clock::time_point::max()) return;
    // The precise clock here: the coarse one may not have reached a deadline the timer already passed.
    if (clock::now() >= s->deadline) {
      s->expired = true;
      s->deadline = clock::time_point::max();
      if (s->a) s->a->cancel();
      if (s->b) s->b->cancel();
      return;
    }
    schedule(s);
  });
}

}  // namespace obsgw::net
