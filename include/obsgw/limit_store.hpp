#pragma once
/// @file
/// Where rate-limit buckets live: in this process (exact across io threads) or shared (Redis), behind one
/// interface so that a RateLimiter does not care. See rate_limiter.hpp for the algorithm.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>

namespace obsgw {

/// One bucket a request is charged to. The caller fills the inputs; the store fills the results.
struct LimitCharge {
  // inputs
  std::string_view key;   ///< the bucket: limit name, '\x1f', key value
  double interval_ns = 0;  ///< emission interval: period / rate
  double tolerance_ns = 0; ///< interval × burst
  double cost = 1;         ///< units
  bool force = false;      ///< charge even beyond the limit (after-the-fact body bytes); never refuses
  // results
  double remaining = 0;            ///< units that could still pass
  std::int64_t reset_ns = 0;       ///< until the bucket is full again
  std::int64_t retry_after_ns = 0; ///< when this charge refused: until the request would fit
};

class LimitStore {
 public:
  virtual ~LimitStore() = default;

  /// The verdict over several charges, all or nothing: every bucket is charged, or none.
  enum class Outcome : unsigned char { allowed, refused, unavailable };
  struct Decision {
    Outcome outcome = Outcome::allowed;
    std::size_t refused_index = 0;  ///< the first charge that refused
  };

  /// Decides now, on the calling io thread, without blocking; returns false when this store can only decide
  /// asynchronously (then the caller awaits decide()).
  virtual bool try_decide(std::span<LimitCharge> charges, Decision& out) = 0;
  /// Decides asynchronously (a network round trip); `unavailable` when the store failed or ran out of time.
  virtual asio::awaitable<Decision> decide(std::span<LimitCharge> charges) = 0;
  /// Charges forced costs (LimitCharge::force) without waiting for an answer: bytes of a chunked body, known
  /// only once it was read. Must not block or throw.
  virtual void record(std::span<LimitCharge> charges) noexcept = 0;
  /// For logs and metrics: "local", "redis".
  virtual std::string_view kind() const noexcept = 0;
};

/// The process-wide in-process store: sharded buckets under short locks, kept across reloads. Idle buckets
/// (full again) are swept as the table grows; at `max_buckets` the oldest-looking ones are dropped.
std::shared_ptr<LimitStore> local_limit_store();

}  // namespace obsgw
