#include "util/event_log.hpp"

#include <mutex>

namespace obsgw {

namespace {
std::mutex g_mutex;
std::shared_ptr<Logger> g_logger;
}  // namespace

void set_event_logger(std::shared_ptr<Logger> logger) {
  std::lock_guard lock(g_mutex);
  g_logger = std::move(logger);
}

std::shared_ptr<Logger> util::event_logger() {
  std::lock_guard lock(g_mutex);
  return g_logger;
}

void util::log_event(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (auto logger = event_logger(); logger && logger->enabled(level)) logger->log(level, message, fields);
}

}  // namespace obsgw
