#pragma once
// Process-wide counters behind /stats and /metrics. Hot-path counters are sharded per io thread
// (each shard on its own cache lines) and summed when scraped, so requests never contend on them.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace obsgw::detail {

inline constexpr unsigned kShards = 64;
// Index of the io thread running on this OS thread (set by the server; 0 elsewhere).
inline thread_local unsigned t_worker_index = 0;
inline unsigned shard_index() noexcept { return t_worker_index % kShards; }

// Status codes with their own slot; anything else counts as "<class>xx other".
inline constexpr std::array<int, 36> kTrackedStatuses = {100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307,
                                                         308, 400, 401, 403, 404, 405, 408, 409, 411, 413, 414, 415,
                                                         417, 422, 429, 431, 499, 500, 501, 502, 503, 504, 505, 507};
inline constexpr std::size_t kStatusSlots = kTrackedStatuses.size() + 5;
std::size_t status_slot(int status) noexcept;
int slot_status(std::size_t slot) noexcept;  // the code, or 1..5 for "other" of a class

// Latency bucket upper bounds in seconds (Prometheus histogram).
inline constexpr std::array<double, 14> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,    0.25,  0.5,    1,     2.5,   5,     10};

struct RouteCounters {
  explicit RouteCounters(std::string n) : name(std::move(n)) {}
  struct alignas(64) Shard {
    std::array<std::atomic<std::uint64_t>, kStatusSlots> by_status{};
    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> latency{};
    std::atomic<std::uint64_t> latency_sum_us{0};
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> forwarded{0};
  };
  void record(int status, std::chrono::microseconds duration, std::uint64_t in, std::uint64_t out, bool forwarded) noexcept;

  std::string name;
  std::array<Shard, kShards> shards;
};

// Counters keyed by a label (rejection reason, upstream error kind). A flood of rejections must not make io
// threads contend, so each thread has its own map and mutex (taken by the scraper only when it reads).
class LabelledCounters {
 public:
  void add(const std::string& key, std::uint64_t n = 1);
  std::map<std::string, std::uint64_t> snapshot() const;

 private:
  struct alignas(64) Shard {
    mutable std::mutex mutex;
    std::map<std::string, std::uint64_t, std::less<>> values;
  };
  std::array<Shard, kShards> shards_;
};

class Metrics {
 public:
  static Metrics& instance();

  // The counters of a route, created on first use and kept across reloads.
  std::shared_ptr<RouteCounters> route(const std::string& name);
  // Requests that matched no route or were refused before routing (no lock: resolved once).
  RouteCounters& unmatched() {
    static const std::shared_ptr<RouteCounters> counters = route("_unmatched");
    return *counters;
  }

  struct alignas(64) ConnShard {
    std::atomic<std::int64_t> active{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> requests{0};
  };
  ConnShard& conn() noexcept { return conn_[shard_index()]; }

  // Verified-token caches (JWT signatures, opaque-token introspection): hot path, so sharded atomics.
  struct alignas(64) AuthShard {
    std::atomic<std::uint64_t> jwt_cache_hits{0};
    std::atomic<std::uint64_t> jwt_cache_misses{0};
    std::atomic<std::uint64_t> jwt_verified{0};
    std::atomic<std::uint64_t> opaque_cache_hits{0};
    std::atomic<std::uint64_t> opaque_cache_misses{0};
  };
  AuthShard& auth() noexcept { return auth_[shard_index()]; }

  // Round trips to a shared rate-limit store (Redis): latency histogram, sharded like the request counters.
  static constexpr std::array<double, 10> kStoreBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1};
  struct alignas(64) StoreShard {
    std::array<std::atomic<std::uint64_t>, kStoreBuckets.size() + 1> latency{};
    std::atomic<std::uint64_t> latency_sum_ns{0};
  };
  // Failures are counted by the policy, with the failure mode it then applied (limit_store_errors).
  void observe_limit_store(std::chrono::steady_clock::duration d) noexcept;

  LabelledCounters rejections;       // key: code
  LabelledCounters key_fetches;      // key: key source "\x1f" success|failure
  LabelledCounters token_checks;     // key: endpoint "\x1f" result (introspection / userinfo calls)
  LabelledCounters browser_logins;   // key: result (browser sign-in callbacks and sign-outs)
  LabelledCounters upstream_errors;  // key: upstream "\x1f" kind
  LabelledCounters upstream_retries; // key: upstream
  LabelledCounters rate_limited;     // key: limit name (refusals only: admissions are not counted per limit)
  LabelledCounters limit_store_errors;  // key: store kind
  LabelledCounters quota_exceeded;      // key: quota name (alert-only quotas over their limit)
  std::atomic<std::uint64_t> limit_buckets_dropped{0};  // in-process buckets dropped at the table's cap
  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  std::atomic<std::uint64_t> refused_connections{0};  // over max_connections
  std::atomic<std::uint64_t> parse_errors{0};
  std::atomic<std::uint64_t> log_lines_dropped{0};
  const std::chrono::system_clock::time_point started = std::chrono::system_clock::now();

  std::int64_t active_connections() const noexcept;
  std::uint64_t total_requests() const noexcept;

  std::string render_prometheus() const;
  std::string render_stats_json() const;
  // Shown in /stats (edge deployments name their region); set when a configuration is applied.
  void set_region(std::string region);

 private:
  Metrics() = default;
  mutable std::mutex routes_mutex_;
  std::string region_;  // guarded by routes_mutex_
  std::map<std::string, std::shared_ptr<RouteCounters>> routes_;
  std::array<ConnShard, kShards> conn_{};
  std::array<AuthShard, kShards> auth_{};
  std::array<StoreShard, kShards> store_{};
};

}  // namespace obsgw::detail
