#pragma once
/// @file
/// Structured logging: one JSON object per line, written by a background thread so that io threads never
/// block on a slow disk or pipe.

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace obsgw {

enum class LogLevel : unsigned char { debug, info, warn, error, off };

/// Parses "debug", "info", "warn", "error", "off"; returns false for anything else.
bool parse_log_level(std::string_view text, LogLevel& out) noexcept;
const char* to_string(LogLevel level) noexcept;

/// A field of a log line. Numbers are written as JSON numbers, everything else as strings.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), text(v) {}
  LogField(std::string_view k, const char* v) : key(k), text(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), text(v) {}
  template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
  LogField(std::string_view k, N n) : key(k), number(static_cast<double>(n)), is_number(true) {}
  std::string_view key;
  std::string_view text;
  double number = 0;
  bool is_number = false;
};

class Logger {
 public:
  /// Writes to `fd` (not closed). Starts the writer thread.
  explicit Logger(int fd = 2, LogLevel level = LogLevel::info);
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void set_level(LogLevel level) noexcept;
  bool enabled(LogLevel level) const noexcept;

  /// {"ts":...,"level":...,"msg":...,<fields>}
  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  /// Queues a complete line (without the newline). Never blocks on I/O.
  void write_line(std::string_view line);
  /// Writes everything queued so far (blocks; not for io threads).
  void flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Installs the logger for events outside any request (identity provider key fetches, ...). Server does this
/// for its own logger; call it earlier (before building a Gateway) to see the first fetches too.
void set_event_logger(std::shared_ptr<Logger> logger);

}  // namespace obsgw
