#include "auth/claims.hpp"

#include <cmath>

#include <fmt/format.h>
#include <simdjson.h>

#include "obsgw/headers.hpp"

namespace obsgw::auth {

namespace {
ClaimFailure failure(std::string code, std::string message) { return ClaimFailure{std::move(code), std::move(message)}; }
}  // namespace

std::optional<std::int64_t> numeric_date(simdjson::dom::element obj, const char* key, bool& malformed) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return std::nullopt;
  double d;
  if (v.is_int64()) return v.get_int64().value_unsafe();
  if (v.is_uint64()) {
    malformed = true;
    return std::nullopt;
  }
  if (v.get_double().get(d) == simdjson::SUCCESS && std::isfinite(d) && std::fabs(d) < 1e15)
    return static_cast<std::int64_t>(std::floor(d));
  malformed = true;
  return std::nullopt;
}

std::optional<ClaimFailure> validate_claims(std::string_view header_json, std::string_view payload_json,
                                            const ClaimRules& rules, std::chrono::system_clock::time_point now,
                                            ValidatedClaims& out) {
  simdjson::dom::parser header_parser, payload_parser;
  simdjson::padded_string header_text(header_json), payload_text(payload_json);
  simdjson::dom::element header, payload;
  if (header_parser.parse(header_text).get(header) != simdjson::SUCCESS || !header.is_object())
    return failure("malformed_token", "the token header is not a JSON object");
  if (payload_parser.parse(payload_text).get(payload) != simdjson::SUCCESS || !payload.is_object())
    return failure("malformed_token", "the token payload is not a JSON object");
  return validate_claims(header, payload, rules, now, out);
}

std::optional<ClaimFailure> validate_claims(simdjson::dom::element header, simdjson::dom::element payload,
                                            const ClaimRules& rules, std::chrono::system_clock::time_point now,
                                            ValidatedClaims& out) {
  // Critical extensions we do not implement make the token unusable (RFC 7515 4.1.11); we implement none.
  if (header["crit"].error() == simdjson::SUCCESS)
    return failure("unsupported_token", "the token requires extensions the gateway does not implement (crit)");
  if (!rules.typ.empty()) {
    std::string_view typ;
    // The "application/" prefix may be omitted or not (RFC 7515 4.1.9).
    if (header["typ"].get(typ) != simdjson::SUCCESS ||
        !(iequals(typ, rules.typ) || (typ.size() > 12 && iequals(typ.substr(0, 12), "application/") && iequals(typ.substr(12), rules.typ))))
      return failure("wrong_token_type", fmt::format("the token type must be \"{}\"", rules.typ));
  }

  const std::int64_t t = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t leeway = rules.leeway.count();
  bool malformed = false;
  auto exp = numeric_date(payload, "exp", malformed);
  auto nbf = numeric_date(payload, "nbf", malformed);
  auto iat = numeric_date(payload, "iat", malformed);
  if (malformed) return failure("malformed_token", "exp, nbf and iat must be numbers of seconds");
  if (!exp && rules.require_exp) return failure("missing_claim", "the token has no expiry (exp)");
  // RFC 7519 4.1.4: the token must not be accepted on or after its expiry time.
  if (exp && t - leeway >= *exp) return failure("token_expired", "the token has expired");
  if (nbf && t + leeway < *nbf) return failure("token_not_yet_valid", "the token is not valid yet (nbf)");
  if (iat && t + leeway < *iat) return failure("token_issued_in_future", "the token was issued in the future (iat)");

  std::string_view iss;
  bool has_iss = payload["iss"].get(iss) == simdjson::SUCCESS;
  if (!rules.issuer.empty() && (!has_iss || iss != rules.issuer))
    return failure("wrong_issuer", "the token was not issued by the expected issuer");

  if (!rules.audiences.empty()) {
    bool match = false;
    auto accept = [&](std::string_view a) {
      for (const auto& want : rules.audiences) match = match || a == want;
    };
    std::string_view single;
    simdjson::dom::array many;
    if (payload["aud"].get(single) == simdjson::SUCCESS) accept(single);
    else if (payload["aud"].get(many) == simdjson::SUCCESS)
      for (auto a : many)
        if (a.is_string()) accept(a.get_string().value_unsafe());
    if (!match) return failure("wrong_audience", "the token is not meant for this audience");
  }
  for (const auto& claim : rules.required)
    if (payload[claim].error() != simdjson::SUCCESS)
      return failure("missing_claim", fmt::format("the token has no \"{}\" claim", claim));

  std::string_view s;
  out = ValidatedClaims{};
  if (payload["sub"].get(s) == simdjson::SUCCESS) out.subject = s;
  if (has_iss) out.issuer = iss;
  if (payload["client_id"].get(s) == simdjson::SUCCESS || payload["azp"].get(s) == simdjson::SUCCESS) out.client_id = s;
  if (payload["email"].get(s) == simdjson::SUCCESS) out.email = s;
  simdjson::dom::array scp;
  if (payload["scope"].get(s) == simdjson::SUCCESS) {
    while (!s.empty()) {
      auto space = s.find(' ');
      if (space != 0) out.scopes.emplace_back(s.substr(0, space));
      if (space == std::string_view::npos) break;
      s.remove_prefix(space + 1);
    }
  } else if (payload["scp"].get(scp) == simdjson::SUCCESS) {
    for (auto v : scp)
      if (v.is_string()) out.scopes.emplace_back(v.get_string().value_unsafe());
  }
  out.expires_at = exp;
  return std::nullopt;
}

}  // namespace obsgw::auth
