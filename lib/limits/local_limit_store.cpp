// The in-process LimitStore: exact across io threads because every decision holds the locks of the buckets it
// touches (one mutex per shard of the table, shards locked in index order so that several charges never
// deadlock). The critical section is a hash lookup and a few multiplications.

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

#include "limits/gcra.hpp"
#include "obsgw/limit_store.hpp"
#include "server/metrics.hpp"
#include "util/keyed_hash.hpp"

namespace obsgw {

namespace {

// Keys are partly chosen by clients (a header's value, an address): hashed with the process's secret key.
using KeyHash = util::KeyedStringHash;

constexpr std::size_t kShardCount = 64;
constexpr std::size_t kMaxCharges = 16;
constexpr std::size_t kMaxBuckets = 4'000'000;  // ~100 bytes each: a few hundred MB at worst
constexpr std::size_t kMaxPerShard = kMaxBuckets / kShardCount;
constexpr std::size_t kFirstSweep = 1024;

class LocalLimitStore final : public LimitStore {
 public:
  bool try_decide(std::span<LimitCharge> charges, Decision& out) override {
    out = decide_now(charges);
    return true;
  }
  asio::awaitable<Decision> decide(std::span<LimitCharge> charges) override { co_return decide_now(charges); }
  void record(std::span<LimitCharge> charges) noexcept override {
    try {
      decide_now(charges);
    } catch (...) {
      // Only allocation can fail here; losing one after-the-fact charge is better than failing the exchange.
    }
  }
  std::string_view kind() const noexcept override { return "local"; }

 private:
  struct alignas(64) Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::int64_t, KeyHash, std::equal_to<>> tat;
    std::size_t sweep_at = kFirstSweep;
  };

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }

  Decision decide_now(std::span<LimitCharge> charges) {
    Decision d;
    const std::size_t n = std::min(charges.size(), kMaxCharges);
    std::array<std::size_t, kMaxCharges> shard_of{};
    std::array<std::size_t, kMaxCharges> order{};
    std::size_t distinct = 0;
    for (std::size_t i = 0; i < n; ++i) {
      shard_of[i] = (KeyHash{}(charges[i].key) >> 7) % kShardCount;
      order[distinct++] = shard_of[i];
    }
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(distinct));
    distinct = static_cast<std::size_t>(std::unique(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(distinct)) - order.begin());
    // Locked in index order (no deadlock between decisions), released however this ends (an insert can throw).
    struct Locks {
      LocalLimitStore& store;
      const std::array<std::size_t, kMaxCharges>& order;
      std::size_t held = 0;
      ~Locks() {
        while (held > 0) store.shards_[order[--held]].mutex.unlock();
      }
    } locks{*this, order};
    for (; locks.held < distinct; ++locks.held) shards_[order[locks.held]].mutex.lock();

    const std::int64_t now = now_ns();
    std::array<limits::GcraStep, kMaxCharges> steps;
    std::array<std::int64_t*, kMaxCharges> slot{};  // existing buckets, written in place when admitted
    bool all = true;
    for (std::size_t i = 0; i < n; ++i) {
      auto& shard = shards_[shard_of[i]];
      auto it = shard.tat.find(charges[i].key);
      if (it != shard.tat.end()) slot[i] = &it->second;  // element addresses survive inserts and rehashes
      std::int64_t stored = it == shard.tat.end() ? now : it->second;
      // Two charges to one bucket in the same request see each other's cost.
      for (std::size_t j = 0; j < i; ++j)
        if (charges[j].key == charges[i].key && steps[j].allowed) stored = std::max(stored, steps[j].new_tat);
      steps[i] = limits::gcra_step(stored, now, charges[i].interval_ns, charges[i].tolerance_ns, charges[i].cost, charges[i].force);
      charges[i].remaining = steps[i].remaining;
      charges[i].reset_ns = steps[i].reset_ns;
      charges[i].retry_after_ns = steps[i].retry_after_ns;
      if (!steps[i].allowed && all) {
        all = false;
        d.outcome = Outcome::refused;
        d.refused_index = i;
      }
    }
    if (all) {
      bool erased = false;  // after an erase a remembered slot may be gone: look up again
      for (std::size_t i = 0; i < n; ++i) {
        if (slot[i] && !erased && steps[i].new_tat > now) {
          *slot[i] = steps[i].new_tat;
          continue;
        }
        erased |= steps[i].new_tat <= now;
        store(shards_[shard_of[i]], charges[i].key, steps[i].new_tat, now);
      }
    }
    return d;
  }

  void store(Shard& shard, std::string_view key, std::int64_t tat, std::int64_t now) {
    auto it = shard.tat.find(key);
    if (it != shard.tat.end()) {
      if (tat <= now) shard.tat.erase(it);  // full again (a refund can bring that about)
      else it->second = tat;
      return;
    }
    if (tat <= now) return;  // a full bucket needs no entry
    if (shard.tat.size() >= shard.sweep_at) sweep(shard, now);
    shard.tat.emplace(std::string(key), tat);
  }

  // Drops buckets that are full again (their entry says nothing), and at the cap a tenth of the others: a dropped
  // bucket starts full, so the cap errs towards letting requests through rather than growing without bound. The
  // next sweep waits until the shard has grown by half again, so a shard of live buckets is not swept per insert.
  static void sweep(Shard& shard, std::int64_t now) {
    std::erase_if(shard.tat, [now](const auto& e) { return e.second <= now; });
    std::size_t dropped = 0;
    if (shard.tat.size() >= kMaxPerShard) {
      const std::size_t target = kMaxPerShard - kMaxPerShard / 10;
      while (shard.tat.size() > target) {
        shard.tat.erase(shard.tat.begin());
        ++dropped;
      }
    }
    if (dropped) detail::Metrics::instance().limit_buckets_dropped.fetch_add(dropped, std::memory_order_relaxed);
    shard.sweep_at = std::max(kFirstSweep, std::min(kMaxPerShard, shard.tat.size() + shard.tat.size() / 2));
  }

  std::array<Shard, kShardCount> shards_;
};

}  // namespace

std::shared_ptr<LimitStore> local_limit_store() {
  static const std::shared_ptr<LimitStore> store = std::make_shared<LocalLimitStore>();
  return store;
}

}  // namespace obsgw
