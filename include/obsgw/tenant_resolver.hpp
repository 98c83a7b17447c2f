#pragma once
/// @file
/// The TenantResolver: which tenant(s) a request acts for, from the identity (a claim, a static binding, or
/// what an API key is bound to), optionally chosen by the client in `X-Scope-OrgID` among the allowed ones.
/// A client-sent tenant header is never passed on as sent: it is removed, and the resolved tenant is set.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "obsgw/policy.hpp"

namespace obsgw {

struct TenantResolverOptions {
  /// Allowed tenants come from this claim (dotted path; string or array, e.g. "tenant_id" or "groups").
  /// Empty: from `bindings`, else from Identity::allowed_tenants (API keys).
  std::string claim;
  std::string strip_prefix;                   ///< only claim values with this prefix count, without it
  std::map<std::string, std::string> mapping; ///< claim value → tenant (e.g. "obs-tenant-acme" → "acme")
  /// Instead of a claim: "sub:<subject>" or "client:<client id>" → tenants. A client binding applies only to a
  /// client acting for itself (no subject, or the subject is the client id, as with client-credentials tokens):
  /// a user who logs in through that client does not inherit its tenants.
  std::map<std::string, std::vector<std::string>> bindings;
  /// With bindings: they apply only to identities from this issuer (recommended with several issuers on the
  /// route: subjects of different issuers share one namespace otherwise).
  std::string bindings_issuer;

  /// false: the identity decides (it must allow exactly one tenant, or all of them on federated routes);
  /// true: the client names the tenant in `client_header`, which must be one of the allowed tenants.
  bool from_header = false;
  /// With from_header: a request without the header is refused even when the identity allows one tenant.
  bool require_header = false;
  /// Query routes: "a|b" (Loki/Mimir/Tempo federation) is accepted when every tenant is allowed.
  bool federation = false;

  std::string client_header = "X-Scope-OrgID";    ///< always removed from the client's request
  std::string upstream_header = "X-Scope-OrgID";  ///< set to the resolved tenant(s), "a|b" for several
};

/// Throws std::invalid_argument naming the problem.
std::shared_ptr<const TenantResolver> make_tenant_resolver(TenantResolverOptions options);

/// The step a Router adds to a route that authenticates but resolves no tenant (unless the route sets
/// Route::trust_client_tenant_header): removes a client-sent `X-Scope-OrgID` once authentication is done (an
/// authenticator that verifies signed headers still sees it), so that no upstream takes an unchecked tenant.
std::shared_ptr<const Policy> make_client_tenant_header_remover();

/// Whether `id` is a valid tenant id as Loki, Mimir and Tempo define it: 1 to 150 bytes of letters, digits and
/// `!-_.*'()`, and not "." or "..".
bool is_valid_tenant_id(std::string_view id) noexcept;

}  // namespace obsgw
