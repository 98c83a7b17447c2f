#pragma once
// Log line timestamps, "2026-11-22T23:59:36.673Z": the date and time part is formatted once a second per thread,
// because gmtime_r takes glibc's time zone lock and a format costs more than the rest of an access log line.

#include <chrono>
#include <string>

namespace obsgw::util {

void append_log_timestamp(std::string& out, std::chrono::system_clock::time_point when);

}  // namespace obsgw::util
