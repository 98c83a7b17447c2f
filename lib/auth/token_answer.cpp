#include "auth/token_answer.hpp"

#include <simdjson.h>

#include "auth/claim_query.hpp"
#include "auth/claims.hpp"
#include "obsgw/headers.hpp"

namespace obsgw::auth {

namespace {
using Mode = IntrospectionAuthenticatorOptions::Mode;
}  // namespace

std::shared_ptr<const Identity> read_token_answer(std::string_view body, const IntrospectionAuthenticatorOptions& options,
                                                  std::int64_t now, std::int64_t& expires_at, std::string& why) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
    why = "the provider's answer is not a JSON object";
    return nullptr;
  }
  if (options.mode == Mode::introspection) {
    bool active = false;
    if (doc["active"].get(active) != simdjson::SUCCESS || !active) return nullptr;
    bool bad_exp = false;
    if (auto exp = numeric_date(doc, "exp", bad_exp)) {  // fractions floored: never cached past expiry
      if (*exp <= now) return nullptr;
      expires_at = *exp;
    } else if (bad_exp) {
      why = "the provider's answer has an exp that is not a number of seconds";
      return nullptr;
    }
    std::string_view token_type;
    const bool has_type = doc["token_type"].get(token_type) == simdjson::SUCCESS;
    if (has_type ? !(iequals(token_type, "bearer") || iequals(token_type, "dpop")) : options.require_token_type) {
      why = has_type ? "the token is not an access token" : "the token is not an access token (no token_type)";
      return nullptr;
    }
    std::string_view iss;
    if (!options.issuer.empty() && (doc["iss"].get(iss) != simdjson::SUCCESS || iss != options.issuer)) {
      why = "the token was not issued by the expected issuer";
      return nullptr;
    }
    if (!options.audiences.empty()) {
      auto aud = claim_values(doc, "aud");
      bool match = false;
      for (const auto& a : aud)
        for (const auto& want : options.audiences) match = match || a == want;
      if (!match) {
        why = "the token is not meant for this audience";
        return nullptr;
      }
    }
  }
  auto id = std::make_shared<Identity>();
  id->method = options.mode == Mode::introspection ? "introspection" : "userinfo";
  std::string_view s;
  if (doc["sub"].get(s) == simdjson::SUCCESS || doc["username"].get(s) == simdjson::SUCCESS) id->subject = s;
  if (doc["client_id"].get(s) == simdjson::SUCCESS) id->client_id = s;
  if (id->subject.empty()) id->subject = id->client_id;  // client-credentials tokens: the client is the subject
  if (doc["iss"].get(s) == simdjson::SUCCESS) id->issuer = s;
  if (doc["email"].get(s) == simdjson::SUCCESS) id->email = s;
  if (doc["scope"].get(s) == simdjson::SUCCESS) id->scopes = split_words(s);
  if (!options.groups_claim.empty()) id->groups = claim_values(doc, options.groups_claim);
  if (options.mode == Mode::userinfo && id->subject.empty()) {
    why = "the userinfo answer has no subject";
    return nullptr;
  }
  id->claims_json = body;
  return id;
}

}  // namespace obsgw::auth
