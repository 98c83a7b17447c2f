#pragma once
// The logger for events that happen outside any request (see obsgw::set_event_logger).

#include <memory>

#include "obsgw/logger.hpp"

namespace obsgw::util {

// Null when none was installed: the event is dropped.
std::shared_ptr<Logger> event_logger();

// Logs through the event logger when one is installed and `level` is enabled.
void log_event(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

}  // namespace obsgw::util
