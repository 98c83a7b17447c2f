#pragma once
/// @file
/// Who is calling, as an Authenticator established it.

#include <string>
#include <vector>

namespace obsgw {

struct Identity {
  std::string method;     ///< how it was established ("jwt", "api_key", "basic", ...); empty: anonymous
  std::string subject;    ///< `sub` or the key's bound subject
  std::string issuer;
  std::string client_id;
  std::string email;
  std::string name;       ///< display name, when the provider gives one (browser sign-in)
  std::vector<std::string> groups;
  std::vector<std::string> scopes;
  std::vector<std::string> allowed_tenants;  ///< tenants this identity may act for
  std::string claims_json;                   ///< the verified claims, for policies that read other claims

  bool authenticated() const noexcept { return !method.empty(); }
};

}  // namespace obsgw
