#pragma once
// Error codes for failures the gateway itself detects while reading a request body or talking upstream,
// each mapped to the status the client gets.

#include <system_error>

namespace obsgw {

enum class GatewayError {
  body_too_large = 1,   // 413
  body_timeout,         // 408
  bad_body_encoding,    // 400
  client_closed,        // 499 (logged only)
  upstream_connect,     // 502
  upstream_connect_timeout,  // 504
  upstream_timeout,     // 504
  upstream_reset,       // 502
  upstream_bad_response,  // 502
  upstream_tls,         // 502
  upstream_resolve,     // 502
};

const std::error_category& gateway_category() noexcept;
inline std::error_code make_error_code(GatewayError e) noexcept { return {static_cast<int>(e), gateway_category()}; }

// Status, JSON error code and message sent to the client for an error code.
struct ErrorResponse {
  int status;
  const char* code;
  const char* message;
};
ErrorResponse error_response_for(const std::error_code& ec) noexcept;

}  // namespace obsgw

template <>
struct std::is_error_code_enum<obsgw::GatewayError> : std::true_type {};
