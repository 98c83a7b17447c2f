#include "obsgw/forward_auth.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "http/char_classes.hpp"
#include "proxy/hop_by_hop.hpp"

namespace obsgw {

namespace {
void validate(const ForwardAuthOptions& o) {
  for (const auto& name : o.response_headers) {
    if (!http::is_token(name)) throw std::invalid_argument(fmt::format("\"{}\" is not a valid header name", name));
    // Framing and connection headers belong to the proxy; credentials are what the policies read.
    if (proxy::is_proxy_managed(name) || proxy::is_credential_header(name))
      throw std::invalid_argument(fmt::format("header \"{}\" cannot be a forward-auth response header", name));
  }
}

class ForwardAuthResponder final : public Forwarder {
 public:
  ForwardAuthResponder(std::string name, ForwardAuthOptions o) : name_(std::move(name)), options_(std::move(o)) {
    validate(options_);
  }
  std::string_view name() const noexcept override { return name_; }

  asio::awaitable<void> forward(Exchange& ex, Downstream& down) const override {
    ex.outcome.upstream = name_;
    ResponseHead head;
    head.status = 200;
    head.framing = BodyFraming::content_length;
    head.content_length = 0;
    for (const auto& name : options_.response_headers)
      if (auto v = ex.request().headers.get(name)) head.headers.add(name, *v);
    std::error_code ec;
    co_await down.write_head(head, ec);
    if (!ec) co_await down.finish(ec);
  }

 private:
  std::string name_;
  ForwardAuthOptions options_;
};

class ForwardAuthGuard final : public Authenticator {
 public:
  ForwardAuthGuard(ForwardAuthOptions o, const std::vector<std::shared_ptr<const Policy>>& route_policies)
      : options_(std::move(o)) {
    validate(options_);
    std::vector<std::string> owned;
    for (const auto& p : route_policies)
      for (auto& h : p->owned_request_headers()) owned.push_back(std::move(h));
    std::erase_if(options_.response_headers, [&](const std::string& name) {
      return std::any_of(owned.begin(), owned.end(), [&](const std::string& o) { return iequals(o, name); });
    });
  }
  std::string_view name() const noexcept override { return "forward_auth_guard"; }
  Verdict on_request(Exchange& ex) const override {
    for (const auto& name : options_.response_headers) ex.request().headers.remove(name);
    return Verdict::proceed();
  }

 private:
  ForwardAuthOptions options_;
};
}  // namespace

std::shared_ptr<const Forwarder> make_forward_auth_responder(std::string name, ForwardAuthOptions options) {
  return std::make_shared<ForwardAuthResponder>(std::move(name), std::move(options));
}

std::shared_ptr<const Policy> make_forward_auth_guard(ForwardAuthOptions options,
                                                      const std::vector<std::shared_ptr<const Policy>>& route_policies) {
  return std::make_shared<ForwardAuthGuard>(std::move(options), route_policies);
}

}  // namespace obsgw
