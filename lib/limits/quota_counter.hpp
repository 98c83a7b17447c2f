#pragma once
// Where quota counters live: Redis (shared by a fleet) or this process. One interface, so the quota policy
// does not care. Counters are plain integers per (quota, tenant, period); a charge checks and adds atomically.

#include <cstdint>
#include <memory>
#include <string>

#include <asio/awaitable.hpp>

#include "obsgw/redis_limit_store.hpp"

namespace obsgw::limits {

struct QuotaCharge {
  // inputs
  std::string requests_key, bytes_key;  // the counters of this period
  std::int64_t request_cost = 0, byte_cost = 0;
  std::int64_t request_limit = -1, byte_limit = -1;  // -1: none
  bool enforce = true;         // over a limit: add nothing and report it (else add and report)
  std::int64_t expire_at = 0;  // Unix seconds: when the counters may go
  // results
  unsigned over = 0;  // bit 0: requests, bit 1: bytes
  std::int64_t requests_used = 0, bytes_used = 0;  // after the charge
};

class QuotaCounter {
 public:
  virtual ~QuotaCounter() = default;
  // Charges now (in process); false when this counter can only answer asynchronously.
  virtual bool try_charge(QuotaCharge& c) = 0;
  // False when the store could not answer in time. With `undo_if_late`, a charge that still lands after its
  // deadline is taken back (the caller refused or counted the request elsewhere).
  virtual asio::awaitable<bool> charge(QuotaCharge& c, bool undo_if_late = false) = 0;
  // Adds without waiting (bytes of a chunked body, known afterwards); never refuses.
  virtual void record(QuotaCharge c) noexcept = 0;
};

std::shared_ptr<QuotaCounter> local_quota_counter();
std::shared_ptr<QuotaCounter> redis_quota_counter(const RedisOptions& options);

}  // namespace obsgw::limits
