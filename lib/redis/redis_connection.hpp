#pragma once
// One pipelined connection to Redis, owned by one io thread (no locks): commands are written as they come,
// replies matched to them in order. Replies are parsed by hiredis's RESP reader; the I/O is Asio's.

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "obsgw/redis_limit_store.hpp"

struct redisReply;
struct redisReader;

namespace obsgw::redis {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept;
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Appends one command in RESP (an array of bulk strings) to `out`.
void append_command(std::string& out, std::initializer_list<std::string_view> args);
void append_command(std::string& out, const std::vector<std::string_view>& args);

class Connection {
 public:
  // `script` is loaded on every (re)connection; call() then runs it by its SHA-1 (`script_sha`).
  Connection(asio::any_io_executor executor, RedisOptions options, std::string script);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool ready() const noexcept { return state_ == State::ready; }
  const std::string& script_sha() const noexcept { return script_sha_; }

  // What to do with the reply to a command whose caller stopped waiting (its deadline passed): the command still
  // ran on the server, and its effect may need undoing. Called on this connection's thread.
  using LateReply = std::function<void(Connection&, const redisReply&)>;

  struct Pending;
  // Sends `command` (RESP) and waits for its reply until `deadline`. Null when the connection is not ready, fails,
  // or the deadline passes first; in that last case `unanswered` (when given) receives the command's handle, to
  // which when_late() can attach what to do with the reply when it comes.
  asio::awaitable<Reply> call(std::string_view command, std::chrono::steady_clock::time_point deadline,
                              std::shared_ptr<Pending>* unanswered = nullptr);
  static void when_late(const std::shared_ptr<Pending>& unanswered, LateReply late);
  // Sends `command` without waiting; its reply is dropped. False when not ready.
  bool send(std::string_view command);
  // Starts connecting in the background when down and the backoff has passed.
  void ensure_connecting();

 private:
  enum class State : unsigned char { down, connecting, ready };

  // The loops run detached; `alive` (false once this connection is destroyed) is checked after every suspension
  // before they touch the connection again.
  asio::awaitable<void> connect(std::shared_ptr<const bool> alive);
  asio::awaitable<void> read_loop(std::uint64_t generation, std::shared_ptr<const bool> alive);
  asio::awaitable<void> flush(std::uint64_t generation, std::shared_ptr<const bool> alive);
  void queue(std::string_view command, std::shared_ptr<Pending> pending);
  bool stalled();
  static constexpr std::size_t kMaxInflight = 10000;
  void fail(std::string_view why) noexcept;

  asio::any_io_executor executor_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  RedisOptions options_;
  std::string script_;
  std::string script_sha_;
  asio::ip::tcp::socket socket_;
  State state_ = State::down;
  std::uint64_t generation_ = 0;  // bumped on every (dis)connection: loops of an old socket stop
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{100};
  std::string out_, writing_;
  bool flushing_ = false;
  std::deque<std::shared_ptr<Pending>> inflight_;
  std::vector<asio::steady_timer*> ready_waiters_;  // callers waiting (within their budget) for a connection
  std::chrono::steady_clock::duration stall_limit_;  // no reply for this long: the connection is taken as dead
  void wake_ready_waiters() noexcept;
  redisReader* reader_ = nullptr;
  std::vector<char> in_;
};

// Identifies a set of options, so that stores made from equal options share one store (and its connections).
std::string options_key(const RedisOptions& o);

// The calling io thread's connection for `owner` (a store; one connection per store and thread), made and
// started connecting on first use. Connections live in thread-local storage so that they close on their own
// thread while its io_context still exists; those of expired owners are dropped as new ones are made.
Connection& thread_connection(const std::shared_ptr<const void>& owner, const asio::any_io_executor& executor,
                              const RedisOptions& options, std::string_view script);
// The calling thread's connection for `owner` if it has one.
Connection* existing_thread_connection(const std::shared_ptr<const void>& owner) noexcept;

}  // namespace obsgw::redis
