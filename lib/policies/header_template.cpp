#include "policies/header_template.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "auth/claim_query.hpp"
#include "obsgw/router.hpp"

namespace obsgw::detail {

HeaderTemplate::HeaderTemplate(std::string_view text) {
  std::string literal;
  while (!text.empty()) {
    auto open = text.find("${");
    if (open == std::string_view::npos) {
      literal.append(text);
      break;
    }
    literal.append(text.substr(0, open));
    auto close = text.find('}', open + 2);
    if (close == std::string_view::npos) throw std::invalid_argument(fmt::format("unclosed \"${{\" in \"{}\"", text));
    std::string_view var = text.substr(open + 2, close - open - 2);
    Part p{Kind::literal, {}};
    if (var == "tenant") p.kind = Kind::tenant;
    else if (var == "subject") p.kind = Kind::subject;
    else if (var == "client_id") p.kind = Kind::client_id;
    else if (var == "email") p.kind = Kind::email;
    else if (var == "client_ip") p.kind = Kind::client_ip;
    else if (var == "request_id") p.kind = Kind::request_id;
    else if (var == "route") p.kind = Kind::route;
    else if (var == "region") p.kind = Kind::region;
    else if (var.starts_with("claim.") && var.size() > 6) p.kind = Kind::claim, p.text = std::string(var.substr(6));
    else
      throw std::invalid_argument(fmt::format("unknown variable \"${{{}}}\" (known: tenant, subject, client_id, email, "
                                              "claim.NAME, client_ip, request_id, route, region)", var));
    if (!literal.empty()) parts_.push_back({Kind::literal, std::move(literal)});
    literal.clear();
    parts_.push_back(std::move(p));
    text.remove_prefix(close + 1);
  }
  if (!literal.empty()) parts_.push_back({Kind::literal, std::move(literal)});
}

std::string HeaderTemplate::expand(const Exchange& ex) const {
  std::string out;
  const Identity* id = ex.identity ? ex.identity.get() : nullptr;
  for (const auto& p : parts_) {
    switch (p.kind) {
      case Kind::literal: out += p.text; break;
      case Kind::tenant:
        for (std::size_t i = 0; i < ex.tenants.size(); ++i) out.append(i ? "|" : "").append(ex.tenants[i]);
        break;
      case Kind::subject: if (id) out += id->subject; break;
      case Kind::client_id: if (id) out += id->client_id; break;
      case Kind::email: if (id) out += id->email; break;
      case Kind::claim:
        if (id && !id->claims_json.empty()) {
          auto values = auth::claim_values(id->claims_json, p.text);
          for (std::size_t i = 0; i < values.size(); ++i) out.append(i ? "," : "").append(values[i]);
        }
        break;
      case Kind::client_ip: out += ex.client_ip(); break;
      case Kind::request_id: out += ex.request_id(); break;
      case Kind::route: if (ex.route()) out += ex.route()->name; break;
      case Kind::region: out += ex.region(); break;
    }
  }
  return out;
}

}  // namespace obsgw::detail
