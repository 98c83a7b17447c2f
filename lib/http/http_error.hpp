#pragma once
// Why a message was refused, as the status and JSON error the client gets.

namespace obsgw::http {

struct HttpError {
  int status = 0;
  const char* code = "";     // stable machine-readable code
  const char* message = "";  // one human sentence; never contains client bytes
  explicit operator bool() const noexcept { return status != 0; }
};

}  // namespace obsgw::http
