#include "obsgw/gateway.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace obsgw {

Gateway::Gateway(Router router, std::vector<std::shared_ptr<const Forwarder>> upstreams, GatewayOptions options)
    : router_(std::move(router)), upstreams_(std::move(upstreams)), options_(options) {}

GatewayBuilder::GatewayBuilder(unsigned io_threads) : io_threads_(io_threads == 0 ? 1 : io_threads) {}

GatewayBuilder& GatewayBuilder::upstream(UpstreamOptions options) {
  return upstream(make_http_forwarder(std::move(options), io_threads_));
}

GatewayBuilder& GatewayBuilder::upstream(std::shared_ptr<const Forwarder> forwarder) {
  if (!forwarder) throw std::invalid_argument("null forwarder");
  for (const auto& f : upstreams_)
    if (f->name() == forwarder->name())
      throw std::invalid_argument(fmt::format("upstream \"{}\" is defined twice", forwarder->name()));
  upstreams_.push_back(std::move(forwarder));
  return *this;
}

GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::host(std::string h) {
  route_.match.host = std::move(h);
  return *this;
}
GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::path(std::string p) {
  route_.match.path = std::move(p);
  route_.match.prefix = false;
  return *this;
}
GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::path_prefix(std::string p) {
  route_.match.path = std::move(p);
  route_.match.prefix = true;
  return *this;
}
GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::methods(std::vector<std::string> m) {
  route_.match.methods = std::move(m);
  return *this;
}
GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::rewrite_prefix(std::string r) {
  route_.rewrite_prefix = std::move(r);
  route_.has_rewrite = true;
  return *this;
}
GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::to(std::string upstream_name) {
  upstream_ = std::move(upstream_name);
  return *this;
}
GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::use(std::shared_ptr<const Policy> policy) {
  route_.policies.push_back(std::move(policy));
  return *this;
}

GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::trust_client_tenant_header(bool trust) {
  route_.trust_client_tenant_header = trust;
  return *this;
}

GatewayBuilder::RouteBuilder& GatewayBuilder::RouteBuilder::forward_auth(ForwardAuthOptions options) {
  route_.forwarder = make_forward_auth_responder("forward_auth", options);
  route_.forward_auth = true;
  forward_auth_ = std::move(options);  // the guard is made in build(), when every policy of the route is known
  return *this;
}

GatewayBuilder::RouteBuilder& GatewayBuilder::route(std::string name) {
  routes_.push_back(std::make_unique<RouteBuilder>());
  routes_.back()->route_.name = std::move(name);
  return *routes_.back();
}

GatewayBuilder& GatewayBuilder::options(GatewayOptions o) {
  options_ = o;
  return *this;
}

std::shared_ptr<const Gateway> GatewayBuilder::build() {
  std::vector<Route> routes;
  for (auto& rb : routes_) {
    Route r = rb->route_;
    if (rb->forward_auth_) r.policies.insert(r.policies.begin(), make_forward_auth_guard(*rb->forward_auth_, r.policies));
    for (const auto& f : upstreams_)
      if (!r.forwarder && f->name() == rb->upstream_) r.forwarder = f;
    if (!r.forwarder)
      throw std::invalid_argument(fmt::format("route \"{}\": unknown upstream \"{}\"", r.name, rb->upstream_));
    routes.push_back(std::move(r));
  }
  return std::make_shared<const Gateway>(Router(std::move(routes)), upstreams_, options_);
}

}  // namespace obsgw
