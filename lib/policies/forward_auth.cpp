#include "obsgw/forward_auth.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "http/char_classes.hpp"

namespace obsgw {

namespace {
void validate(const ForwardAuthOptions& o) {
  for (const auto& name : o.response_headers)
    if (!http::is_token(name)) throw std::invalid_argument(fmt::format("\"{}\" is not a valid header name", name));
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
  explicit ForwardAuthGuard(ForwardAuthOptions o) : options_(std::move(o)) { validate(options_); }
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

std::shared_ptr<const Policy> make_forward_auth_guard(ForwardAuthOptions options) {
  return std::make_shared<ForwardAuthGuard>(std::move(options));
}

}  // namespace obsgw
