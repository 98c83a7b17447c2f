#pragma once
/// @file
/// Rate limits: GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per key).
///
/// A limit lets `rate` units through per `period`, with bursts of up to `burst` units at once (default: one
/// period's worth). A request is charged to every limit of the policy at once, all or nothing: when one limit
/// refuses, the others are not charged. Over a limit the client gets 429 with Retry-After, RateLimit-Limit,
/// RateLimit-Remaining, RateLimit-Reset and RateLimit-Policy, and a JSON body naming the limit.
///
/// State is kept per bucket, the bucket being the limit's name plus the key's value (the client's address,
/// tenant, ...). Two policies naming the same limit share its buckets, across routes and across reloads.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "obsgw/policy.hpp"

namespace obsgw {

class LimitStore;

enum class LimitKey : unsigned char {
  global,     ///< one bucket for everything the limit sees
  client_ip,  ///< Exchange::client_address (after trusted proxies); IPv6 by its /64 (LimitSpec::ipv6_prefix)
  tenant,     ///< each of Exchange::tenants (a federated query a|b is charged to a and to b); "-" when none
  subject,    ///< the identity's subject, else its client id; "-" when anonymous
  route,      ///< the route's name
  header,     ///< a request header's value (first 256 bytes); "-" when absent
};

enum class LimitUnit : unsigned char {
  requests,  ///< each request costs 1
  bytes,     ///< each request costs its body size: Content-Length up front; a chunked body is let in while the
             ///< bucket is not in debt and charged its real size when it has been read
};

struct LimitSpec {
  std::string name;  ///< names the buckets and the limit in 429 bodies and metrics; unique per store
  LimitKey key = LimitKey::client_ip;
  std::string header;  ///< for LimitKey::header
  unsigned ipv6_prefix = 64;  ///< for LimitKey::client_ip: IPv6 clients are grouped by this many leading bits
  LimitUnit unit = LimitUnit::requests;
  double rate = 0;                          ///< units per period, > 0
  std::chrono::milliseconds period{1000};  ///< > 0
  double burst = 0;                         ///< units let through at once; 0: `rate`
};

/// What a limiter does when its store cannot decide in time (Redis down or slow).
enum class StoreFailureMode : unsigned char {
  fail_open,    ///< let the request through (counted in obsgw_rate_limit_store_errors_total)
  fail_closed,  ///< refuse with 503 rate_limit_unavailable
  local,        ///< decide with in-process buckets instead, as if this instance were alone
};

struct RateLimitOptions {
  std::vector<LimitSpec> limits;
  /// Where buckets live; null: the process-wide in-process store (exact across io threads).
  std::shared_ptr<LimitStore> store;
  StoreFailureMode on_store_failure = StoreFailureMode::local;
  /// Send RateLimit-* headers on admitted responses too (the limit closest to refusing); 429s always have them.
  bool response_headers = true;
};

/// Builds the policy. It runs in Phase::admit when no limit needs the identity (keys global, client_ip, route,
/// header), else in Phase::limit. Throws std::invalid_argument for an invalid spec.
std::shared_ptr<const RateLimiter> make_rate_limiter(RateLimitOptions options);

}  // namespace obsgw
