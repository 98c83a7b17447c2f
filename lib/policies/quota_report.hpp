#pragma once
// Implemented by quota policies so that the admin listener can show a tenant's usage (/quota?tenant=NAME).

#include <string>
#include <string_view>

#include <asio/awaitable.hpp>

namespace obsgw::detail {

class QuotaReport {
 public:
  virtual ~QuotaReport() = default;
  // One JSON object: name, period, mode, requests/bytes {limit, used, remaining}, reset (RFC 3339), reset_seconds.
  // Empty when the store could not answer.
  virtual asio::awaitable<std::string> usage_json(std::string tenant) const = 0;
};

}  // namespace obsgw::detail
