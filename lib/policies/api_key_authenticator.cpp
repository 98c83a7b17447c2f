#include "obsgw/api_key_authenticator.hpp"

#include <stdexcept>
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "auth/challenge.hpp"
#include "auth/token_cache.hpp"
#include "obsgw/tenant_resolver.hpp"

namespace obsgw {

namespace {
std::optional<auth::TokenDigest> parse_hex_digest(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auth::TokenDigest d;
  for (std::size_t i = 0; i < 32; ++i) {
    int v = 0;
    for (std::size_t j = 0; j < 2; ++j) {
      char c = hex[2 * i + j];
      int n = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (n < 0) return std::nullopt;
      v = v * 16 + n;
    }
    d.bytes[i] = static_cast<unsigned char>(v);
  }
  return d;
}

class ApiKeyAuthenticator final : public Authenticator {
 public:
  explicit ApiKeyAuthenticator(ApiKeyAuthenticatorOptions o) : options_(std::move(o)) {
    if (options_.keys.empty()) throw std::invalid_argument("keys: at least one key is required");
    if (options_.sources.empty()) throw std::invalid_argument("token_sources: at least one source is required");
    options_.identity_headers.validate();
    for (std::size_t i = 0; i < options_.keys.size(); ++i) {
      const auto& k = options_.keys[i];
      if (k.id.empty()) throw std::invalid_argument(fmt::format("keys[{}].id: required", i));
      auto digest = parse_hex_digest(k.sha256);
      if (!digest) throw std::invalid_argument(fmt::format("keys[{}].sha256: expected 64 hex digits", i));
      for (const auto& t : k.tenants)
        if (!is_valid_tenant_id(t)) throw std::invalid_argument(fmt::format("keys[{}].tenants: \"{}\" is not a valid tenant id", i, t));
      auto id = std::make_shared<Identity>();
      id->method = "api_key";
      id->subject = k.subject.empty() ? k.id : k.subject;
      id->client_id = k.id;
      id->allowed_tenants = k.tenants;
      id->scopes = k.scopes;
      id->groups = k.groups;
      if (!by_digest_.emplace(*digest, std::move(id)).second)
        throw std::invalid_argument(fmt::format("keys[{}].sha256: the same key is listed twice", i));
    }
  }

  std::vector<std::string> owned_request_headers() const override { return identity_header_names(options_.identity_headers); }
  std::string_view name() const noexcept override { return "api_key"; }

  Verdict on_request(Exchange& ex) const override {
    options_.identity_headers.strip(ex.request().headers);
    auto found = find_token(ex.request(), options_.sources);
    if (!found)
      return auth::unauthorized(options_.realm, auth::Challenge::none_given, "missing_api_key", "this route requires an API key");
    auto it = found->value().empty() ? by_digest_.end() : by_digest_.find(auth::digest_token(found->value()));
    if (it == by_digest_.end())
      return auth::unauthorized(options_.realm, auth::Challenge::invalid_token, "unknown_api_key", "the API key is not valid");
    options_.identity_headers.apply(*it->second, ex.request().headers);
    if (!options_.forward_key)  // every configured place: a second credential must not reach the upstream either
      for (const auto& s : options_.sources) remove_token(ex.request(), s);
    ex.identity = it->second;
    return Verdict::proceed();
  }

 private:
  ApiKeyAuthenticatorOptions options_;
  std::unordered_map<auth::TokenDigest, std::shared_ptr<const Identity>, auth::TokenDigestHash> by_digest_;
};
}  // namespace

std::shared_ptr<const Authenticator> make_api_key_authenticator(ApiKeyAuthenticatorOptions options) {
  return std::make_shared<ApiKeyAuthenticator>(std::move(options));
}

}  // namespace obsgw
