#include "obsgw/logger.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "server/metrics.hpp"
#include "util/json_escape.hpp"
#include "util/log_timestamp.hpp"

namespace obsgw {

bool parse_log_level(std::string_view t, LogLevel& out) noexcept {
  if (t == "debug") out = LogLevel::debug;
  else if (t == "info") out = LogLevel::info;
  else if (t == "warn") out = LogLevel::warn;
  else if (t == "error") out = LogLevel::error;
  else if (t == "off") out = LogLevel::off;
  else return false;
  return true;
}

const char* to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "?";
}

// Each writing thread appends to its own buffer (its mutex is contended only when the writer thread swaps it
// out); the writer thread does all the I/O.
struct Logger::Impl {
  struct ThreadBuffer {
    std::mutex mutex;
    std::string lines;
    std::string spare;  // the writer's half: swapped with `lines`, so both keep their capacity
  };
  static constexpr std::size_t kMaxBuffered = 8u << 20;  // per thread; beyond it lines are dropped and counted

  int fd;
  std::atomic<LogLevel> level;
  std::mutex registry_mutex;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers;
  std::mutex wake_mutex;
  std::condition_variable wake;
  bool stopping = false;
  std::atomic<std::uint64_t> generation{0};
  std::thread writer;
  std::uint64_t id;

  Impl(int f, LogLevel l) : fd(f), level(l) {
    static std::atomic<std::uint64_t> next_id{1};
    id = next_id++;
    writer = std::thread([this] { run(); });
  }

  ThreadBuffer& local() {
    // One buffer per (thread, logger); loggers are few, so a short list beats a map.
    thread_local std::vector<std::pair<std::uint64_t, ThreadBuffer*>> mine;
    for (auto& [owner, buffer] : mine)
      if (owner == id) return *buffer;
    std::lock_guard lock(registry_mutex);
    buffers.push_back(std::make_unique<ThreadBuffer>());
    mine.emplace_back(id, buffers.back().get());
    return *buffers.back();
  }

  void append(std::string_view line) {
    auto& b = local();
    std::lock_guard lock(b.mutex);
    if (b.lines.size() + line.size() + 1 > kMaxBuffered) {
      detail::Metrics::instance().log_lines_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    b.lines.append(line);
    b.lines.push_back('\n');
  }

  void write_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return;  // nowhere to report a broken log sink
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void drain_once() {
    std::vector<ThreadBuffer*> snapshot;
    {
      std::lock_guard lock(registry_mutex);
      for (auto& b : buffers) snapshot.push_back(b.get());
    }
    for (auto* b : snapshot) {
      {
        std::lock_guard lock(b->mutex);
        b->spare.swap(b->lines);
      }
      if (!b->spare.empty()) write_all(b->spare);
      b->spare.clear();
    }
  }

  void run() {
    std::unique_lock lock(wake_mutex);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(50));
      lock.unlock();
      drain_once();
      generation.fetch_add(1);
      lock.lock();
    }
    lock.unlock();
    drain_once();
  }
};

Logger::Logger(int fd, LogLevel level) : impl_(std::make_unique<Impl>(fd, level)) {}

Logger::~Logger() {
  {
    std::lock_guard lock(impl_->wake_mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_one();
  impl_->writer.join();
}

void Logger::set_level(LogLevel level) noexcept { impl_->level.store(level, std::memory_order_relaxed); }

bool Logger::enabled(LogLevel level) const noexcept {
  auto current = impl_->level.load(std::memory_order_relaxed);
  return current != LogLevel::off && level >= current;
}

void Logger::write_line(std::string_view line) { impl_->append(line); }

void Logger::flush() {
  auto target = impl_->generation.load() + 2;
  impl_->wake.notify_one();
  while (impl_->generation.load() < target) {
    impl_->wake.notify_one();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (!enabled(level)) return;
  std::string line = "{\"ts\":\"";
  util::append_log_timestamp(line, std::chrono::system_clock::now());
  line.append("\",\"level\":\"").append(to_string(level)).append("\",\"msg\":");
  util::append_json_string(line, message);
  for (const auto& f : fields) {
    line.push_back(',');
    util::append_json_string(line, f.key);
    line.push_back(':');
    if (f.is_number) fmt::format_to(std::back_inserter(line), "{}", f.number);
    else util::append_json_string(line, f.text);
  }
  line.push_back('}');
  write_line(line);
}

}  // namespace obsgw
