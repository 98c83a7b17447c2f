#include "obsgw/ip_rules.hpp"

namespace obsgw {

namespace {

class IpRules final : public Policy {
 public:
  explicit IpRules(IpRulesOptions o) : options_(std::move(o)) {}
  Phase phase() const noexcept override { return Phase::admit; }
  std::string_view name() const noexcept override { return "ip_rules"; }

  Verdict on_request(Exchange& ex) const override {
    const auto& addr = ex.client_address();
    if (options_.deny.contains(addr))
      return Verdict::reject(403, "ip_denied", "requests from this address are refused");
    if (!options_.allow.empty() && !options_.allow.contains(addr))
      return Verdict::reject(403, "ip_not_allowed", "this address is not on the route's allow list");
    return Verdict::proceed();
  }

 private:
  IpRulesOptions options_;
};

}  // namespace

std::shared_ptr<const Policy> make_ip_rules(IpRulesOptions options) { return std::make_shared<IpRules>(std::move(options)); }

}  // namespace obsgw
