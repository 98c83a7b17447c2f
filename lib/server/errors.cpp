#include "server/errors.hpp"

#include <string>

namespace obsgw {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "obsgw"; }
  std::string message(int v) const override { return error_response_for({v, *this}).message; }
};
}  // namespace

const std::error_category& gateway_category() noexcept {
  static Category c;
  return c;
}

ErrorResponse error_response_for(const std::error_code& ec) noexcept {
  if (ec.category() == gateway_category()) {
    switch (static_cast<GatewayError>(ec.value())) {
      case GatewayError::body_too_large: return {413, "body_too_large", "request body exceeds the configured limit"};
      case GatewayError::body_timeout: return {408, "request_timeout", "request body not received in time"};
      case GatewayError::bad_body_encoding: return {400, "bad_chunked_encoding", "malformed chunked request body"};
      case GatewayError::client_closed: return {499, "client_closed", "client closed the connection"};
      case GatewayError::upstream_connect: return {502, "upstream_unreachable", "could not connect to the upstream"};
      case GatewayError::upstream_connect_timeout: return {504, "upstream_connect_timeout", "timed out connecting to the upstream"};
      case GatewayError::upstream_timeout: return {504, "upstream_timeout", "the upstream did not answer in time"};
      case GatewayError::upstream_reset: return {502, "upstream_reset", "the upstream closed the connection before answering"};
      case GatewayError::upstream_bad_response: return {502, "bad_upstream_response", "the upstream sent an invalid response"};
      case GatewayError::upstream_tls: return {502, "upstream_tls_error", "TLS handshake with the upstream failed"};
      case GatewayError::upstream_resolve: return {502, "upstream_unresolvable", "could not resolve the upstream host"};
    }
  }
  return {502, "upstream_error", "error talking to the upstream"};
}

}  // namespace obsgw
