#pragma once
// Appends a string as a JSON string literal (quotes included). Bytes that are not valid UTF-8 are replaced by
// U+FFFD so that the output is always valid JSON.

#include <string>
#include <string_view>

namespace obsgw::util {

void append_json_string(std::string& out, std::string_view s);

inline std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace obsgw::util
