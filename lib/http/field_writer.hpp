#pragma once
// Writing header fields into a message head: "name: value\r\n" per field, in one growth of the buffer and plain
// copies (appending piece by piece cost a capacity check and a library call per piece, four per field).

#include <cstring>
#include <string>
#include <string_view>

#include "obsgw/headers.hpp"

namespace obsgw::http {

// Appends every field of `fields` whose name `skip(name)` does not claim.
template <class Skip>
void append_fields(std::string& out, const Headers& fields, Skip skip) {
  std::size_t size = 0;
  for (const auto& f : fields)
    if (!skip(f.name)) size += f.name.size() + f.value.size() + 4;
  const std::size_t at = out.size();
  out.resize(at + size);
  char* p = out.data() + at;
  for (const auto& f : fields) {
    if (skip(f.name)) continue;
    std::memcpy(p, f.name.data(), f.name.size());
    p += f.name.size();
    *p++ = ':';
    *p++ = ' ';
    std::memcpy(p, f.value.data(), f.value.size());
    p += f.value.size();
    *p++ = '\r';
    *p++ = '\n';
  }
}

}  // namespace obsgw::http
