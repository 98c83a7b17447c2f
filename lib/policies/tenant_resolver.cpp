#include "obsgw/tenant_resolver.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "auth/claim_query.hpp"
#include "http/char_classes.hpp"
#include "util/per_thread.hpp"

namespace obsgw {

bool is_valid_tenant_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 150 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '!' || c == '-' ||
              c == '_' || c == '.' || c == '*' || c == '\'' || c == '(' || c == ')';
    if (!ok) return false;
  }
  return true;
}

namespace {
class ClaimTenantResolver final : public TenantResolver {
 public:
  explicit ClaimTenantResolver(TenantResolverOptions o) : options_(std::move(o)), memo_owner_(std::make_shared<char>()) {
    for (const auto* name : {&options_.client_header, &options_.upstream_header})
      if (name->empty() || !http::is_token(*name))
        throw std::invalid_argument(fmt::format("\"{}\" is not a valid header name", *name));
    if (!options_.claim.empty() && !options_.bindings.empty())
      throw std::invalid_argument("give either claim or bindings, not both");
    if (options_.require_header && !options_.from_header)
      throw std::invalid_argument("require_header needs from_header");
    for (const auto& [value, tenant] : options_.mapping)
      if (!is_valid_tenant_id(tenant))
        throw std::invalid_argument(fmt::format("mapping: \"{}\" is not a valid tenant id", tenant));
    for (const auto& [who, tenants] : options_.bindings) {
      if (!(who.rfind("sub:", 0) == 0 || who.rfind("client:", 0) == 0) || who.find(':') + 1 == who.size())
        throw std::invalid_argument(fmt::format("bindings: \"{}\" must be \"sub:<subject>\" or \"client:<client id>\"", who));
      for (const auto& t : tenants)
        if (!is_valid_tenant_id(t))
          throw std::invalid_argument(fmt::format("bindings.{}: \"{}\" is not a valid tenant id", who, t));
    }
  }

  std::string_view name() const noexcept override { return "tenant"; }
  std::vector<std::string> owned_request_headers() const override {
    return {options_.client_header, options_.upstream_header};
  }

  Verdict on_request(Exchange& ex) const override {
    auto& headers = ex.request().headers;
    std::optional<std::string> requested;
    if (auto h = headers.get(options_.client_header)) {
      if (headers.count(options_.client_header) > 1)
        return Verdict::reject(400, "invalid_tenant", fmt::format("{} is given more than once", options_.client_header));
      requested = std::string(*h);
    }
    headers.remove(options_.client_header);  // never passed on as the client sent it
    if (options_.client_header != options_.upstream_header) headers.remove(options_.upstream_header);
    if (!ex.identity)
      return Verdict::reject(401, "authentication_required", "this route resolves tenants from an identity")
          .with_header("WWW-Authenticate", "Bearer realm=\"obsgw\"");

    const std::vector<std::string>& allowed = allowed_tenants(ex.identity);
    if (allowed.empty())
      return Verdict::reject(403, "no_tenant", "the identity is not allowed to act for any tenant");

    ex.tenants.clear();
    if (options_.from_header && requested) {
      std::string_view list = *requested;
      while (true) {
        auto bar = list.find('|');
        std::string_view id = list.substr(0, bar);
        if (!is_valid_tenant_id(id))
          return Verdict::reject(400, "invalid_tenant",
                                 fmt::format("{} holds an invalid tenant id (1-150 of letters, digits, !-_.*'())",
                                             options_.client_header));
        if (std::find(allowed.begin(), allowed.end(), id) == allowed.end())
          return Verdict::reject(403, "tenant_not_allowed",
                                 fmt::format("the identity may not act for tenant \"{}\"", id));
        if (std::find(ex.tenants.begin(), ex.tenants.end(), id) == ex.tenants.end()) ex.tenants.emplace_back(id);
        if (bar == std::string_view::npos) break;
        if (!options_.federation)
          return Verdict::reject(400, "invalid_tenant", "this route takes exactly one tenant");
        list.remove_prefix(bar + 1);
      }
    } else if (options_.require_header) {
      return Verdict::reject(400, "tenant_required", fmt::format("name the tenant in {}", options_.client_header));
    } else if (allowed.size() == 1 || options_.federation) {
      ex.tenants = allowed;
    } else {
      return Verdict::reject(403, "ambiguous_tenant",
                             options_.from_header
                                 ? fmt::format("the identity may act for several tenants: name one in {}", options_.client_header)
                                 : "the identity may act for several tenants and this route takes exactly one");
    }
    std::string joined;
    for (const auto& t : ex.tenants) joined += (joined.empty() ? "" : "|") + t;
    headers.set(options_.upstream_header, joined);
    return Verdict::proceed();
  }

 private:
  std::vector<std::string> compute(const Identity& id) const {
    std::vector<std::string> out;
    auto add = [&](std::string t) {
      if (is_valid_tenant_id(t) && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(std::move(t));
    };
    if (!options_.claim.empty()) {
      for (auto& v : auth::claim_values(id.claims_json, options_.claim)) {
        if (auto m = options_.mapping.find(v); m != options_.mapping.end()) add(m->second);
        else if (!options_.strip_prefix.empty()) {
          if (v.size() > options_.strip_prefix.size() && v.compare(0, options_.strip_prefix.size(), options_.strip_prefix) == 0)
            add(v.substr(options_.strip_prefix.size()));
        } else if (options_.mapping.empty()) {
          add(std::move(v));
        }
      }
    } else if (!options_.bindings.empty()) {
      if (!options_.bindings_issuer.empty() && id.issuer != options_.bindings_issuer) return out;
      auto bound = [&](const std::string& key) {
        if (auto b = options_.bindings.find(key); b != options_.bindings.end())
          for (const auto& t : b->second) add(t);
      };
      if (!id.subject.empty()) bound("sub:" + id.subject);
      const bool client_for_itself = id.subject.empty() || id.subject == id.client_id;
      if (!id.client_id.empty() && client_for_itself) bound("client:" + id.client_id);
    } else {
      for (const auto& t : id.allowed_tenants) add(t);
    }
    return out;
  }

  // Identities from the verified-token cache repeat: remember the last few results per thread (the memo holds
  // the identity, so a pointer match is the same identity).
  const std::vector<std::string>& allowed_tenants(const std::shared_ptr<const Identity>& id) const {
    struct Memo {
      std::array<std::pair<std::shared_ptr<const Identity>, std::vector<std::string>>, 64> slots;
    };
    auto& memo = util::per_thread<Memo>(memo_owner_, [] { return std::make_unique<Memo>(); });
    auto& slot = memo.slots[(reinterpret_cast<std::uintptr_t>(id.get()) >> 4) % memo.slots.size()];
    if (slot.first != id) {
      slot.second = compute(*id);
      slot.first = id;
    }
    return slot.second;
  }

  TenantResolverOptions options_;
  std::shared_ptr<void> memo_owner_;
};

class ClientTenantHeaderRemover final : public TenantResolver {
 public:
  std::string_view name() const noexcept override { return "untrusted_tenant_header"; }
  Verdict on_request(Exchange& ex) const override {
    ex.request().headers.remove("X-Scope-OrgID");
    return Verdict::proceed();
  }
};
}  // namespace

std::shared_ptr<const Policy> make_client_tenant_header_remover() {
  static const auto instance = std::make_shared<const ClientTenantHeaderRemover>();  // stateless: one for all routes
  return instance;
}

std::shared_ptr<const TenantResolver> make_tenant_resolver(TenantResolverOptions options) {
  return std::make_shared<ClaimTenantResolver>(std::move(options));
}

}  // namespace obsgw
