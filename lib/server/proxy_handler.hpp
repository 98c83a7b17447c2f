#pragma once
// The request lifecycle (docs/pipeline.md): route → policies by phase → forward → complete.

#include <memory>

#include "obsgw/gateway.hpp"
#include "obsgw/logger.hpp"
#include "server/client_connection.hpp"

namespace obsgw::detail {

class ProxyHandler final : public RequestHandler {
 public:
  ProxyHandler(std::shared_ptr<const Gateway> gateway, std::shared_ptr<Logger> logger)
      : gateway_(std::move(gateway)), logger_(std::move(logger)) {}

  // Called on the owning io thread only.
  void set_gateway(std::shared_ptr<const Gateway> g) noexcept { gateway_ = std::move(g); }

  asio::awaitable<void> handle(Exchange& ex, ClientConnection& down) override;
  void on_refused(Exchange& ex) noexcept override { complete(*gateway_, ex, 0); }

 private:
  void complete(const Gateway& gw, Exchange& ex, std::size_t policies_ran) noexcept;

  std::shared_ptr<const Gateway> gateway_;
  std::shared_ptr<Logger> logger_;
};

}  // namespace obsgw::detail
