#include "obsgw/authorization.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "auth/claim_query.hpp"
#include "auth/jwt_verifier.hpp"

namespace obsgw {

namespace {
bool any_of_in(const std::vector<std::string>& wanted, const std::vector<std::string>& held) {
  for (const auto& w : wanted)
    if (std::find(held.begin(), held.end(), w) != held.end()) return true;
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

class RouteAuthorizer final : public Authorizer {
 public:
  explicit RouteAuthorizer(AuthorizationOptions o) : options_(std::move(o)) {
    if (options_.scopes.empty() && options_.groups.empty() && options_.roles.empty() && options_.claims.empty())
      throw std::invalid_argument("requires nothing: give scopes, groups, roles or claims");
    for (const auto& s : options_.scopes) required_scopes_ += (required_scopes_.empty() ? "" : " ") + s;
  }

  std::string_view name() const noexcept override { return "authorize"; }

  Verdict on_request(Exchange& ex) const override {
    if (!ex.identity)
      return Verdict::reject(401, "authentication_required", "this route requires an authenticated identity")
          .with_header("WWW-Authenticate", "Bearer realm=\"obsgw\"");
    const Identity& id = *ex.identity;
    for (const auto& scope : options_.scopes)
      if (std::find(id.scopes.begin(), id.scopes.end(), scope) == id.scopes.end())
        return Verdict::reject(403, "insufficient_scope", fmt::format("this route requires the scope \"{}\"", scope))
            .with_header("WWW-Authenticate",
                         fmt::format("Bearer error=\"insufficient_scope\", scope=\"{}\"", required_scopes_));
    if (!options_.groups.empty() && !any_of_in(options_.groups, id.groups))
      return Verdict::reject(403, "forbidden", fmt::format("this route requires membership of one of: {}", join(options_.groups)));
    if (!options_.roles.empty() || !options_.claims.empty()) {
      thread_local simdjson::dom::parser parser;
      simdjson::dom::element claims;
      if (parser.parse(id.claims_json).get(claims) != simdjson::SUCCESS)
        return Verdict::reject(403, "forbidden", "this route requires claims the identity does not carry");
      if (!options_.roles.empty() && !any_of_in(options_.roles, auth::claim_values(claims, options_.roles_claim)))
        return Verdict::reject(403, "forbidden", fmt::format("this route requires one of the roles: {}", join(options_.roles)));
      for (const auto& rule : options_.claims) {
        std::string why;
        if (!auth::claim_rule_holds(claims, rule, why)) return Verdict::reject(403, "forbidden", "not allowed: " + why);
      }
    }
    return Verdict::proceed();
  }

 private:
  AuthorizationOptions options_;
  std::string required_scopes_;
};
}  // namespace

std::shared_ptr<const Authorizer> make_authorizer(AuthorizationOptions options) {
  return std::make_shared<RouteAuthorizer>(std::move(options));
}

}  // namespace obsgw
