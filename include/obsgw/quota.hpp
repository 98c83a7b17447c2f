#pragma once
/// @file
/// Per-tenant quotas: requests and body bytes per calendar day or month (UTC), counted in Redis so that a fleet
/// shares them (or in process for a single instance; such counts start again when the process does).
///
/// Enforcing: a request that would go over gets 429 quota_exceeded with Retry-After until the period's end.
/// Alert-only: it passes, is counted, and the excess is logged (at most once a minute per quota and tenant),
/// counted in obsgw_quota_exceeded_total and flagged to the client in X-Quota-Exceeded.
/// Admitted responses carry X-Quota-Remaining-Requests / -Bytes and X-Quota-Reset. The admin listener's
/// /quota?tenant=NAME shows every quota's limit, use, remaining, period and reset time.
/// Requests without a tenant are not counted; a federated query (a|b) counts for each tenant.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "obsgw/policy.hpp"
#include "obsgw/rate_limiter.hpp"
#include "obsgw/redis_limit_store.hpp"

namespace obsgw {

enum class QuotaPeriod : unsigned char { day, month };
enum class QuotaMode : unsigned char { enforce, alert };

struct QuotaLimits {
  std::optional<std::uint64_t> requests;
  std::optional<std::uint64_t> bytes;  ///< request body bytes
};

struct QuotaOptions {
  std::string name;  ///< names the counters (keep it stable: renaming starts counting anew)
  QuotaPeriod period = QuotaPeriod::month;
  QuotaMode mode = QuotaMode::enforce;
  QuotaLimits limits;                          ///< for every tenant without an entry in `tenants`
  std::map<std::string, QuotaLimits> tenants;  ///< per-tenant limits
  std::optional<RedisOptions> redis;           ///< none: counted in this process only
  StoreFailureMode on_store_failure = StoreFailureMode::fail_open;  ///< Redis down: let through, refuse, or count locally
};

/// Runs in Phase::limit (it needs the tenant). Throws std::invalid_argument for invalid options.
std::shared_ptr<const Policy> make_quota(QuotaOptions options);

}  // namespace obsgw
