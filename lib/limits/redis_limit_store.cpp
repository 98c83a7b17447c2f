// The Redis LimitStore: the GCRA of limits/gcra.hpp as a server-side script, so that every gatewayd sharing the
// server charges the same buckets atomically and on one clock (Redis's TIME).

#include <charconv>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>

#include <hiredis/hiredis.h>

#include <asio/this_coro.hpp>

#include "obsgw/redis_limit_store.hpp"
#include "redis/redis_connection.hpp"
#include "server/metrics.hpp"

namespace obsgw {

namespace {

using clock = std::chrono::steady_clock;

// KEYS: the buckets. ARGV: four per key: interval and tolerance in microseconds, cost, force (1/0).
// Returns {refused index (0: none), then per key: remaining, reset µs, retry-after µs}.
// Times are microseconds since the epoch: Lua numbers are doubles, exact to 2^53 (nanoseconds would not be).
constexpr std::string_view kGcraScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local new_tats = {}
local out = {0}
local refused = 0
for i = 1, n do
  local base = (i - 1) * 4
  local interval = tonumber(ARGV[base + 1])
  local tolerance = tonumber(ARGV[base + 2])
  local cost = tonumber(ARGV[base + 3])
  local force = ARGV[base + 4] == '1'
  local stored = tonumber(redis.call('GET', KEYS[i])) or now
  for j = 1, i - 1 do
    if KEYS[j] == KEYS[i] and new_tats[j] then stored = math.max(stored, new_tats[j]) end
  end
  local tat = math.max(stored, now)
  local new_tat = tat + math.floor(cost * interval + 0.5)
  local ahead = new_tat - now
  if ahead > tolerance and not force then
    if refused == 0 then refused = i end
    out[#out + 1] = math.max(0, math.floor((tolerance - (tat - now)) / interval))
    out[#out + 1] = tat - now
    out[#out + 1] = ahead - tolerance
  else
    new_tats[i] = new_tat
    out[#out + 1] = math.max(0, math.floor((tolerance - ahead) / interval))
    out[#out + 1] = ahead
    out[#out + 1] = 0
  end
end
out[1] = refused
if refused == 0 then
  for i = 1, n do
    local tat = new_tats[i]
    if tat > now then
      redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
return out
)lua";

class RedisLimitStore final : public LimitStore {
 public:
  explicit RedisLimitStore(RedisOptions o) : options_(std::move(o)) {
    if (options_.host.empty()) throw std::invalid_argument("redis: host is empty");
    if (options_.timeout.count() <= 0) throw std::invalid_argument("redis: timeout must be > 0");
  }

  bool try_decide(std::span<LimitCharge>, Decision&) override { return false; }

  asio::awaitable<Decision> decide(std::span<LimitCharge> charges) override {
    const auto started = clock::now();
    auto executor = co_await asio::this_coro::executor;
    redis::Connection& c = redis::thread_connection(alive_, executor, options_, kGcraScript);
    std::string command;
    build(command, c.script_sha(), charges);
    std::shared_ptr<redis::Connection::Pending> unanswered;
    redis::Reply reply = co_await c.call(command, started + options_.timeout, &unanswered);
    if (unanswered) {
      // The decision timed out but still runs on the server: if it charged the buckets, they are given back (the
      // request was answered by on_store_failure, not admitted by these buckets).
      redis::Connection::when_late(unanswered, [refund = refund_command(c.script_sha(), charges)](redis::Connection& conn,
                                                                                                  const redisReply& late) {
        if (late.type == REDIS_REPLY_ARRAY && late.elements > 0 && late.element[0]->type == REDIS_REPLY_INTEGER &&
            late.element[0]->integer == 0)
          conn.send(refund);
      });
    }
    Decision d;
    if (!reply || !read(*reply, charges, d)) {
      if (reply && reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("NOSCRIPT")) {
        std::string load;  // the script was flushed on the server: load it again for the next requests
        redis::append_command(load, {"SCRIPT", "LOAD", kGcraScript});
        c.send(load);
      }
      d.outcome = Outcome::unavailable;
    }
    detail::Metrics::instance().observe_limit_store(clock::now() - started);
    co_return d;
  }

  void record(std::span<LimitCharge> charges) noexcept override {
    try {
      redis::Connection* c = redis::existing_thread_connection(alive_);
      std::string command;
      if (c) build(command, c->script_sha(), charges);
      if (!c || !c->send(command)) detail::Metrics::instance().limit_store_errors.add("redis");
    } catch (...) {
      detail::Metrics::instance().limit_store_errors.add("redis");
    }
  }

  std::string_view kind() const noexcept override { return "redis"; }

 private:
  void build(std::string& command, const std::string& sha, std::span<const LimitCharge> charges) const {
    thread_local std::vector<std::string> storage;
    thread_local std::vector<std::string_view> args;
    const std::size_t n = charges.size();
    storage.resize(n * 5 + 1);
    args.clear();
    args.push_back("EVALSHA");
    args.push_back(sha);
    storage[0] = std::to_string(n);
    args.push_back(storage[0]);
    for (std::size_t i = 0; i < n; ++i) {
      storage[1 + i].assign(options_.key_prefix).append(charges[i].key);
      args.push_back(storage[1 + i]);
    }
    // std::to_chars: fmt's exact fixed-precision path for doubles was a visible share of a decision's cost.
    auto put = [](std::string& s, double v, std::chars_format f, int precision) {
      char buf[64];
      auto r = precision >= 0 ? std::to_chars(buf, buf + sizeof buf, v, f, precision) : std::to_chars(buf, buf + sizeof buf, v, f);
      s.assign(buf, r.ec == std::errc() ? static_cast<std::size_t>(r.ptr - buf) : 0);
    };
    for (std::size_t i = 0; i < n; ++i) {
      const auto& c = charges[i];
      std::string* s = &storage[1 + n + i * 4];
      put(s[0], c.interval_ns / 1000.0, std::chars_format::fixed, 3);
      put(s[1], std::floor(c.tolerance_ns / 1000.0), std::chars_format::fixed, 0);
      put(s[2], c.cost, std::chars_format::general, -1);
      s[3].assign(1, c.force ? '1' : '0');
      for (int k = 0; k < 4; ++k) args.push_back(s[k]);
    }
    redis::append_command(command, args);
  }

  std::string refund_command(const std::string& sha, std::span<const LimitCharge> charges) const {
    thread_local std::vector<LimitCharge> negated;
    negated.assign(charges.begin(), charges.end());
    for (auto& c : negated) {
      c.cost = -c.cost;
      c.force = true;
    }
    std::string command;
    build(command, sha, negated);
    return command;
  }

  static bool read(const redisReply& r, std::span<LimitCharge> charges, Decision& d) {
    if (r.type != REDIS_REPLY_ARRAY || r.elements != 1 + 3 * charges.size()) return false;
    for (std::size_t i = 0; i < r.elements; ++i)
      if (r.element[i]->type != REDIS_REPLY_INTEGER) return false;
    const long long refused = r.element[0]->integer;
    for (std::size_t i = 0; i < charges.size(); ++i) {
      charges[i].remaining = static_cast<double>(r.element[1 + 3 * i]->integer);
      charges[i].reset_ns = r.element[2 + 3 * i]->integer * 1000;
      charges[i].retry_after_ns = r.element[3 + 3 * i]->integer * 1000;
    }
    if (refused < 0 || static_cast<std::size_t>(refused) > charges.size()) return false;
    d.outcome = refused == 0 ? Outcome::allowed : Outcome::refused;
    d.refused_index = refused == 0 ? 0 : static_cast<std::size_t>(refused - 1);
    return true;
  }

  RedisOptions options_;
  std::shared_ptr<const void> alive_ = std::make_shared<int>(0);
};

}  // namespace

std::shared_ptr<LimitStore> redis_limit_store(const RedisOptions& options) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<LimitStore>> stores;
  std::lock_guard lock(mutex);
  std::erase_if(stores, [](const auto& e) { return e.second.expired(); });
  auto& slot = stores[redis::options_key(options)];
  if (auto s = slot.lock()) return s;
  auto s = std::make_shared<RedisLimitStore>(options);
  slot = s;
  return s;
}

}  // namespace obsgw
