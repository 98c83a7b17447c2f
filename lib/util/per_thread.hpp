#pragma once
// State that a shared, immutable policy keeps per io thread, so that the hot path needs no lock: one T per
// (thread, owner). `owner` is a token the policy holds; once the policy is gone (a reload), the thread drops
// its T on its next lookup of a new owner.

#include <memory>
#include <vector>

namespace obsgw::util {

template <class T, class Make>
T& per_thread(const std::shared_ptr<void>& owner, Make make) {
  struct Slot {
    std::weak_ptr<void> owner;
    std::unique_ptr<T> value;
  };
  thread_local std::vector<Slot> slots;
  for (auto& s : slots)
    if (!s.owner.owner_before(owner) && !owner.owner_before(s.owner)) return *s.value;
  std::erase_if(slots, [](const Slot& s) { return s.owner.expired(); });
  slots.push_back(Slot{owner, make()});
  return *slots.back().value;
}

}  // namespace obsgw::util
