#include "util/log_timestamp.hpp"

#include <ctime>

namespace obsgw::util {

void append_log_timestamp(std::string& out, std::chrono::system_clock::time_point when) {
  struct SecondCache {
    std::time_t second = -1;
    char text[24] = {};  // "YYYY-MM-DDTHH:MM:SS."
    std::size_t size = 0;
  };
  thread_local SecondCache cache;
  const auto ms_total = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  const std::time_t second = static_cast<std::time_t>(ms_total / 1000);
  const int ms = static_cast<int>(ms_total % 1000);
  if (second != cache.second) {
    std::tm tm{};
    gmtime_r(&second, &tm);
    cache.size = std::strftime(cache.text, sizeof cache.text, "%Y-%m-%dT%H:%M:%S.", &tm);
    cache.second = second;
  }
  out.append(cache.text, cache.size);
  const char digits[4] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                          static_cast<char>('0' + ms % 10), 'Z'};
  out.append(digits, 4);
}

}  // namespace obsgw::util
