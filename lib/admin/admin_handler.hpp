#pragma once
// The admin listener's endpoints: /health, /ready, /stats, /metrics, /quota.

#include <functional>
#include <memory>

#include "obsgw/gateway.hpp"
#include "server/client_connection.hpp"

namespace obsgw::detail {

class AdminHandler final : public RequestHandler {
 public:
  explicit AdminHandler(std::function<std::shared_ptr<const Gateway>()> current_gateway)
      : current_gateway_(std::move(current_gateway)) {}
  asio::awaitable<void> handle(Exchange& ex, ClientConnection& down) override;

 private:
  asio::awaitable<void> quota_usage(Exchange& ex, ClientConnection& down);
  std::function<std::shared_ptr<const Gateway>()> current_gateway_;
};

}  // namespace obsgw::detail
