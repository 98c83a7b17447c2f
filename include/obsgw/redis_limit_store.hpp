#pragma once
/// @file
/// Rate-limit buckets in Redis, shared by every gatewayd that uses the same server: one limit for a fleet.
///
/// Each decision is one EVALSHA of a script that charges all of a request's buckets atomically on the server
/// (same GCRA as in process, on the server's clock). Each io thread keeps its own connection and pipelines its
/// requests on it; a decision that gets no answer within `timeout` is `unavailable`, and the limiter then does
/// what its on_store_failure says. A lost connection is re-established in the background with backoff; while
/// it is down decisions are `unavailable` at once, without waiting.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "obsgw/limit_store.hpp"

namespace obsgw {

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  int database = 0;
  std::string username;  ///< ACL user (Redis 6+); empty: the default user
  std::string password;  ///< empty: no AUTH
  std::chrono::milliseconds timeout{10};           ///< budget of one decision, round trip included
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds max_backoff{5000};     ///< reconnect attempts back off from 100 ms up to this
  std::string key_prefix = "obsgw:rl:";
};

/// One store per distinct set of options in a process (policies and reloads share it and its connections).
/// Throws std::invalid_argument for unusable options.
std::shared_ptr<LimitStore> redis_limit_store(const RedisOptions& options);

}  // namespace obsgw
