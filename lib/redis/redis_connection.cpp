#include "redis/redis_connection.hpp"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <charconv>
#include <random>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <fmt/format.h>

#include "obsgw/logger.hpp"
#include "util/event_log.hpp"

namespace obsgw::redis {

using clock = std::chrono::steady_clock;

void ReplyDeleter::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

namespace {

void append_count(std::string& out, char kind, std::size_t n) {
  char buf[24];
  buf[0] = kind;
  auto end = std::to_chars(buf + 1, buf + sizeof buf - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(buf, static_cast<std::size_t>(end - buf));
}

template <class Args>
void append_args(std::string& out, const Args& args) {
  append_count(out, '*', args.size());
  for (std::string_view a : args) {
    append_count(out, '$', a.size());
    out.append(a).append("\r\n");
  }
}

std::string sha1_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha1(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) fmt::format_to(std::back_inserter(out), "{:02x}", digest[i]);
  return out;
}

}  // namespace

void append_command(std::string& out, std::initializer_list<std::string_view> args) { append_args(out, args); }
void append_command(std::string& out, const std::vector<std::string_view>& args) { append_args(out, args); }

struct Connection::Pending {
  Reply reply;
  bool done = false;
  clock::time_point sent;
  asio::steady_timer* waiter = nullptr;  // set while a caller waits; null for fire-and-forget commands
  LateReply late;                        // set when the caller gave up waiting
};

Connection::Connection(asio::any_io_executor executor, RedisOptions options, std::string script)
    : executor_(std::move(executor)), options_(std::move(options)), script_(std::move(script)), socket_(executor_) {
  script_sha_ = sha1_hex(script_);
  in_.resize(16 * 1024);
  stall_limit_ = std::max<clock::duration>(std::chrono::seconds(1), options_.timeout * 20);
}

Connection::~Connection() {
  *alive_ = false;
  std::error_code ec;
  socket_.close(ec);
  if (reader_) redisReaderFree(reader_);
  reader_ = nullptr;
}

void Connection::ensure_connecting() {
  if (state_ != State::down || clock::now() < next_attempt_) return;
  state_ = State::connecting;
  asio::co_spawn(executor_, connect(alive_), asio::detached);
}

void Connection::wake_ready_waiters() noexcept {
  for (auto* t : ready_waiters_) t->cancel();
  ready_waiters_.clear();
}

void Connection::fail(std::string_view why) noexcept {
  const bool was_ready = state_ == State::ready;
  ++generation_;
  state_ = State::down;
  std::error_code ec;
  socket_.close(ec);
  if (reader_) {
    redisReaderFree(reader_);
    reader_ = nullptr;
  }
  out_.clear();
  flushing_ = false;
  for (auto& p : inflight_) {
    p->done = true;  // with no reply: the caller sees the store as unavailable
    if (p->waiter) p->waiter->cancel();
  }
  inflight_.clear();
  wake_ready_waiters();
  // Back off with jitter, so that a fleet does not reconnect in lockstep after a Redis restart.
  thread_local std::minstd_rand jitter(std::random_device{}());
  auto wait = backoff_ + std::chrono::milliseconds(jitter() % static_cast<unsigned>(backoff_.count() / 2 + 1));
  next_attempt_ = clock::now() + wait;
  backoff_ = std::min(options_.max_backoff, backoff_ * 2);
  if (was_ready || backoff_ == options_.max_backoff)
    util::log_event(LogLevel::warn, "redis connection lost or refused",
                    {{"address", fmt::format("{}:{}", options_.host, options_.port)}, {"reason", std::string(why)},
                     {"retry_in_ms", std::to_string(wait.count())}});
}

asio::awaitable<void> Connection::connect(std::shared_ptr<const bool> alive) {
  const std::uint64_t gen = ++generation_;
  std::error_code ec;
  asio::ip::tcp::resolver resolver(executor_);
  asio::steady_timer guard(executor_);
  guard.expires_after(options_.connect_timeout);
  bool timed_out = false;
  guard.async_wait([&, alive](std::error_code e) {
    if (!e && *alive && generation_ == gen) {
      timed_out = true;
      std::error_code ignored;
      socket_.close(ignored);
      resolver.cancel();
    }
  });
  auto results = co_await resolver.async_resolve(options_.host, std::to_string(options_.port),
                                                 asio::redirect_error(asio::use_awaitable, ec));
  if (!*alive) co_return;
  if (!ec) co_await asio::async_connect(socket_, results, asio::redirect_error(asio::use_awaitable, ec));
  if (!*alive || generation_ != gen) co_return;
  if (ec || timed_out) {
    guard.cancel();
    fail(timed_out ? "connect timed out" : ec.message());
    co_return;
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  reader_ = redisReaderCreate();
  // Handshake: AUTH, SELECT and SCRIPT LOAD pipelined; each must succeed before requests are let through.
  std::string hello;
  if (!options_.password.empty()) {
    if (options_.username.empty()) append_command(hello, {"AUTH", options_.password});
    else append_command(hello, {"AUTH", options_.username, options_.password});
  }
  if (options_.database != 0) append_command(hello, {"SELECT", std::to_string(options_.database)});
  append_command(hello, {"SCRIPT", "LOAD", script_});
  const std::size_t expected = (options_.password.empty() ? 0 : 1) + (options_.database != 0 ? 1 : 0) + 1;
  co_await asio::async_write(socket_, asio::buffer(hello), asio::redirect_error(asio::use_awaitable, ec));
  if (!*alive) co_return;
  std::size_t got = 0;
  std::string error;
  while (!ec && got < expected && generation_ == gen && !timed_out) {
    void* r = nullptr;
    if (redisReaderGetReply(reader_, &r) != REDIS_OK) {
      error = "unreadable reply";
      break;
    }
    if (r) {
      Reply reply(static_cast<redisReply*>(r));
      ++got;
      if (reply->type == REDIS_REPLY_ERROR) error = std::string(reply->str, reply->len);
      else if (got == expected && std::string_view(reply->str ? reply->str : "", reply->len) != script_sha_)
        error = "SCRIPT LOAD answered an unexpected SHA-1";
      if (!error.empty()) break;
      continue;
    }
    std::size_t n = co_await socket_.async_read_some(asio::buffer(in_), asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive) co_return;
    if (!ec) redisReaderFeed(reader_, in_.data(), n);
  }
  guard.cancel();
  if (generation_ != gen) co_return;
  if (ec || timed_out || !error.empty()) {
    fail(!error.empty() ? error : timed_out ? "handshake timed out" : ec.message());
    co_return;
  }
  state_ = State::ready;
  backoff_ = std::chrono::milliseconds(100);
  wake_ready_waiters();
  util::log_event(LogLevel::info, "redis connected", {{"address", fmt::format("{}:{}", options_.host, options_.port)}});
  asio::co_spawn(executor_, read_loop(gen, alive_), asio::detached);
}

asio::awaitable<void> Connection::read_loop(std::uint64_t gen, std::shared_ptr<const bool> alive) {
  std::error_code ec;
  while (generation_ == gen) {
    void* r = nullptr;
    if (redisReaderGetReply(reader_, &r) != REDIS_OK) {
      fail("unreadable reply");
      co_return;
    }
    if (r) {
      Reply reply(static_cast<redisReply*>(r));
      if (inflight_.empty()) {
        fail("a reply nobody asked for");
        co_return;
      }
      auto p = std::move(inflight_.front());
      inflight_.pop_front();
      p->done = true;
      if (p->waiter) {
        p->reply = std::move(reply);
        p->waiter->cancel();
      } else if (p->late) {
        try {
          p->late(*this, *reply);
        } catch (...) {
          // Undoing a late effect is best effort; the reply is dropped either way.
        }
      }
      if (generation_ != gen) co_return;  // the handler failed the connection
      continue;
    }
    std::size_t n = co_await socket_.async_read_some(asio::buffer(in_), asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive || generation_ != gen) co_return;
    if (ec) {
      fail(ec == asio::error::eof ? "closed by the server" : ec.message());
      co_return;
    }
    redisReaderFeed(reader_, in_.data(), n);
  }
}

asio::awaitable<void> Connection::flush(std::uint64_t gen, std::shared_ptr<const bool> alive) {
  std::error_code ec;
  while (generation_ == gen && !out_.empty()) {
    writing_.swap(out_);
    out_.clear();
    co_await asio::async_write(socket_, asio::buffer(writing_), asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive || generation_ != gen) co_return;
    if (ec) {
      fail(ec.message());
      co_return;
    }
  }
  flushing_ = false;
}

void Connection::queue(std::string_view command, std::shared_ptr<Pending> pending) {
  pending->sent = clock::now();
  out_.append(command);
  inflight_.push_back(std::move(pending));
  if (!flushing_) {
    flushing_ = true;
    asio::co_spawn(executor_, flush(generation_, alive_), asio::detached);
  }
}

bool Connection::stalled() {
  // A server that stops answering without closing the connection (a pause, a network partition) would otherwise
  // let commands pile up without bound: past a cap, or with the oldest unanswered for too long, start over.
  if (inflight_.empty()) return false;
  if (inflight_.size() < kMaxInflight && clock::now() - inflight_.front()->sent < stall_limit_) return false;
  fail(inflight_.size() >= kMaxInflight ? "too many commands unanswered" : "no reply within the stall limit");
  return true;
}

bool Connection::send(std::string_view command) {
  if (state_ == State::ready && stalled()) return false;
  if (state_ != State::ready) {
    ensure_connecting();
    return false;
  }
  queue(command, std::make_shared<Pending>());
  return true;
}

void Connection::when_late(const std::shared_ptr<Pending>& unanswered, LateReply late) {
  if (unanswered && !unanswered->done) unanswered->late = std::move(late);
}

asio::awaitable<Reply> Connection::call(std::string_view command, clock::time_point deadline, std::shared_ptr<Pending>* unanswered) {
  if (state_ != State::ready) {
    ensure_connecting();
    if (state_ == State::connecting) {  // a connection on its way (the first request of a thread): wait within budget
      asio::steady_timer timer(executor_);
      timer.expires_at(deadline);
      ready_waiters_.push_back(&timer);
      std::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::erase(ready_waiters_, &timer);
    }
    if (state_ != State::ready || clock::now() >= deadline) co_return nullptr;
  }
  if (stalled()) co_return nullptr;
  auto p = std::make_shared<Pending>();
  queue(command, p);
  asio::steady_timer timer(executor_);
  timer.expires_at(deadline);
  p->waiter = &timer;
  std::error_code ec;
  if (!p->done) co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  p->waiter = nullptr;  // a reply after this point finds nobody waiting
  if (!p->done && unanswered) *unanswered = p;
  co_return std::move(p->reply);
}

namespace {
struct ThreadConnection {
  std::weak_ptr<const void> owner;
  std::unique_ptr<Connection> connection;
};
std::vector<ThreadConnection>& thread_connections() {
  thread_local std::vector<ThreadConnection> list;
  return list;
}
}  // namespace

std::string options_key(const RedisOptions& o) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", o.host, o.port, o.database, o.username, o.password,
                     o.timeout.count(), o.connect_timeout.count(), o.max_backoff.count(), o.key_prefix);
}

Connection* existing_thread_connection(const std::shared_ptr<const void>& owner) noexcept {
  for (auto& e : thread_connections())
    if (!e.owner.owner_before(owner) && !owner.owner_before(e.owner)) return e.connection.get();
  return nullptr;
}

Connection& thread_connection(const std::shared_ptr<const void>& owner, const asio::any_io_executor& executor,
                              const RedisOptions& options, std::string_view script) {
  if (auto* c = existing_thread_connection(owner)) return *c;
  auto& list = thread_connections();
  std::erase_if(list, [](const ThreadConnection& e) { return e.owner.expired(); });
  list.push_back({owner, std::make_unique<Connection>(executor, options, std::string(script))});
  list.back().connection->ensure_connecting();
  return *list.back().connection;
}

}  // namespace obsgw::redis
