#include "limits/quota_counter.hpp"

#include <chrono>
#include <map>
#include <mutex>
#include <unordered_map>

#include <hiredis/hiredis.h>

#include <asio/this_coro.hpp>

#include "redis/redis_connection.hpp"
#include "server/metrics.hpp"

namespace obsgw::limits {

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The check-and-add both counters do, in process and (as Lua, below) in Redis.
void apply(QuotaCharge& c, std::int64_t& requests, std::int64_t& bytes) {
  c.over = 0;
  if (c.request_limit >= 0 && requests + c.request_cost > c.request_limit) c.over |= 1;
  if (c.byte_limit >= 0 && bytes + c.byte_cost > c.byte_limit) c.over |= 2;
  if (c.over == 0 || !c.enforce) {
    requests += c.request_cost;
    bytes += c.byte_cost;
  }
  c.requests_used = requests;
  c.bytes_used = bytes;
}

class LocalQuotaCounter final : public QuotaCounter {
 public:
  bool try_charge(QuotaCharge& c) override {
    std::lock_guard lock(mutex_);
    sweep();
    auto& r = counters_[c.requests_key];
    auto& b = counters_[c.bytes_key];
    r.expire_at = b.expire_at = c.expire_at;
    apply(c, r.value, b.value);
    return true;
  }
  asio::awaitable<bool> charge(QuotaCharge& c, bool) override { co_return try_charge(c); }
  void record(QuotaCharge c) noexcept override {
    try {
      c.enforce = false;
      try_charge(c);
    } catch (...) {
    }
  }

 private:
  struct Counter {
    std::int64_t value = 0;
    std::int64_t expire_at = 0;
  };
  // Counters of ended periods go, once a minute at most.
  void sweep() {
    const auto now = unix_now();
    if (now < next_sweep_) return;
    next_sweep_ = now + 60;
    std::erase_if(counters_, [now](const auto& e) { return e.second.expire_at != 0 && e.second.expire_at < now; });
  }
  std::mutex mutex_;  // quotas are charged once per request: one short lock is cheaper than the bookkeeping to avoid it
  std::unordered_map<std::string, Counter> counters_;
  std::int64_t next_sweep_ = 0;
};

// KEYS: requests counter, bytes counter. ARGV: request cost, byte cost, request limit, byte limit (-1: none),
// enforce (1/0), expire-at (Unix seconds). Returns {over bits, requests used, bytes used}.
constexpr std::string_view kQuotaScript = R"lua(
local r = tonumber(redis.call('GET', KEYS[1]) or '0')
local b = tonumber(redis.call('GET', KEYS[2]) or '0')
local rc = tonumber(ARGV[1])
local bc = tonumber(ARGV[2])
local rl = tonumber(ARGV[3])
local bl = tonumber(ARGV[4])
local over = 0
if rl >= 0 and r + rc > rl then over = over + 1 end
if bl >= 0 and b + bc > bl then over = over + 2 end
if over == 0 or ARGV[5] == '0' then
  if rc ~= 0 then
    r = redis.call('INCRBY', KEYS[1], rc)
    redis.call('EXPIREAT', KEYS[1], ARGV[6])
  end
  if bc ~= 0 then
    b = redis.call('INCRBY', KEYS[2], bc)
    redis.call('EXPIREAT', KEYS[2], ARGV[6])
  end
end
return {over, r, b}
)lua";

class RedisQuotaCounter final : public QuotaCounter {
 public:
  explicit RedisQuotaCounter(RedisOptions o) : options_(std::move(o)) {}

  bool try_charge(QuotaCharge&) override { return false; }

  asio::awaitable<bool> charge(QuotaCharge& c, bool undo_if_late) override {
    const auto started = std::chrono::steady_clock::now();
    auto executor = co_await asio::this_coro::executor;
    redis::Connection& conn = redis::thread_connection(alive_, executor, options_, kQuotaScript);
    std::string command;
    build(command, conn.script_sha(), c);
    std::shared_ptr<redis::Connection::Pending> unanswered;
    redis::Reply reply = co_await conn.call(command, started + options_.timeout, undo_if_late ? &unanswered : nullptr);
    if (unanswered) {
      QuotaCharge back = c;
      back.request_cost = -back.request_cost;
      back.byte_cost = -back.byte_cost;
      back.enforce = false;
      std::string undo;
      build(undo, conn.script_sha(), back);
      redis::Connection::when_late(unanswered, [undo = std::move(undo)](redis::Connection& late_conn, const redisReply& late) {
        if (late.type == REDIS_REPLY_ARRAY && late.elements == 3 && late.element[0]->type == REDIS_REPLY_INTEGER &&
            late.element[0]->integer == 0)
          late_conn.send(undo);  // it was counted: take it back
      });
    }
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3;
    for (std::size_t i = 0; ok && i < 3; ++i) ok = reply->element[i]->type == REDIS_REPLY_INTEGER;
    if (ok) {
      c.over = static_cast<unsigned>(reply->element[0]->integer);
      c.requests_used = reply->element[1]->integer;
      c.bytes_used = reply->element[2]->integer;
    } else if (reply && reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("NOSCRIPT")) {
      std::string load;
      redis::append_command(load, {"SCRIPT", "LOAD", kQuotaScript});
      conn.send(load);
    }
    detail::Metrics::instance().observe_limit_store(std::chrono::steady_clock::now() - started);
    co_return ok;
  }

  void record(QuotaCharge c) noexcept override {
    try {
      c.enforce = false;
      redis::Connection* conn = redis::existing_thread_connection(alive_);
      std::string command;
      if (conn) build(command, conn->script_sha(), c);
      if (!conn || !conn->send(command)) detail::Metrics::instance().limit_store_errors.add("redis");
    } catch (...) {
    }
  }

 private:
  void build(std::string& command, const std::string& sha, const QuotaCharge& c) const {
    const std::string rk = options_.key_prefix + c.requests_key, bk = options_.key_prefix + c.bytes_key;
    const std::string rc = std::to_string(c.request_cost), bc = std::to_string(c.byte_cost);
    const std::string rl = std::to_string(c.request_limit), bl = std::to_string(c.byte_limit);
    const std::string exp = std::to_string(c.expire_at);
    redis::append_command(command, {"EVALSHA", sha, "2", rk, bk, rc, bc, rl, bl, c.enforce ? "1" : "0", exp});
  }

  RedisOptions options_;
  std::shared_ptr<const void> alive_ = std::make_shared<int>(0);
};

}  // namespace

std::shared_ptr<QuotaCounter> local_quota_counter() {
  static const std::shared_ptr<QuotaCounter> counter = std::make_shared<LocalQuotaCounter>();
  return counter;
}

std::shared_ptr<QuotaCounter> redis_quota_counter(const RedisOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<QuotaCounter>> counters;
  std::lock_guard lock(mutex);
  std::erase_if(counters, [](const auto& e) { return e.second.expired(); });
  auto& slot = counters[redis::options_key(options)];
  if (auto c = slot.lock()) return c;
  auto c = std::make_shared<RedisQuotaCounter>(options);
  slot = c;
  return c;
}

}  // namespace obsgw::limits
