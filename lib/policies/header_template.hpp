#pragma once
// Header values with ${...} references to the exchange: ${tenant}, ${subject}, ${client_id}, ${email},
// ${claim.PATH}, ${client_ip}, ${request_id}, ${route}, ${region}. Compiled once from the config.

#include <string>
#include <string_view>
#include <vector>

#include "obsgw/exchange.hpp"

namespace obsgw::detail {

class HeaderTemplate {
 public:
  // Throws std::invalid_argument naming an unknown variable or an unclosed "${".
  explicit HeaderTemplate(std::string_view text);

  bool is_literal() const noexcept { return parts_.size() <= 1 && (parts_.empty() || parts_[0].kind == Kind::literal); }
  // The value for this exchange. References that resolve to nothing expand to "" (several tenants: "a|b";
  // a claim with several values: joined with ',').
  std::string expand(const Exchange& ex) const;

 private:
  enum class Kind : unsigned char { literal, tenant, subject, client_id, email, claim, client_ip, request_id, route, region };
  struct Part {
    Kind kind;
    std::string text;  // literal text, or the claim path
  };
  std::vector<Part> parts_;
};

}  // namespace obsgw::detail
