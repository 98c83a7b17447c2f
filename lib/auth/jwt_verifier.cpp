#include "auth/jwt_verifier.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "auth/claim_query.hpp"
#include "auth/jws.hpp"

namespace obsgw::auth {

namespace {
// A per-thread parser with its own padded input buffer: parsing a token's JSON allocates nothing once warm.
struct ReusableParser {
  simdjson::dom::parser parser;
  std::string buffer;
  simdjson::error_code parse(std::string_view json, simdjson::dom::element& out) {
    buffer.assign(json);
    buffer.resize(json.size() + simdjson::SIMDJSON_PADDING);
    return parser.parse(buffer.data(), json.size(), false).get(out);
  }
};

VerifyOutcome fail(std::string code, std::string message, std::size_t provider = 0) {
  VerifyOutcome o;
  o.kind = VerifyOutcome::Kind::failed;
  o.code = std::move(code);
  o.message = std::move(message);
  o.provider = provider;
  return o;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : std::string(sep)) + s;
  return out;
}
}  // namespace

bool claim_rule_holds(simdjson::dom::element claims, const ClaimRule& rule, std::string& why) {
  bool was_string = false;
  auto values = claim_values(claims, rule.claim, &was_string);
  // Scopes are one space-separated string (RFC 8693 4.2, RFC 9068 2.2.3): they count word by word. No other
  // claim is split, so a group named "Platform Admins" never matches "Admins".
  if (was_string && (rule.claim == "scope" || rule.claim == "scp")) values = split_words(values.front());
  const auto& pool = values;
  for (const auto& want : rule.contains) {
    if (std::find(pool.begin(), pool.end(), want) == pool.end()) {
      why = fmt::format("claim \"{}\" must contain \"{}\"", rule.claim, want);
      return false;
    }
  }
  if (!rule.one_of.empty()) {
    for (const auto& v : values)
      if (std::find(rule.one_of.begin(), rule.one_of.end(), v) != rule.one_of.end()) return true;
    why = fmt::format("claim \"{}\" must be one of {}", rule.claim, join(rule.one_of, ", "));
    return false;
  }
  return true;
}

JwtVerifier::JwtVerifier(const std::vector<JwtProviderOptions>& providers, std::size_t max_token_bytes)
    : max_token_bytes_(max_token_bytes) {
  if (providers.empty()) throw std::invalid_argument("at least one provider is required");
  for (std::size_t i = 0; i < providers.size(); ++i) {
    const auto& o = providers[i];
    const std::string where = fmt::format("providers[{}]", i);
    if (o.issuer.empty()) throw std::invalid_argument(where + ".issuer: required");
    if (o.audiences.empty() && !o.any_audience)
      throw std::invalid_argument(where + ".audiences: required (or any_audience: true to accept every audience)");
    if (!o.audiences.empty() && o.any_audience)
      throw std::invalid_argument(where + ": give audiences or any_audience, not both");
    for (std::size_t j = 0; j < i; ++j)
      if (providers[j].issuer == o.issuer)
        throw std::invalid_argument(fmt::format("{}.issuer: \"{}\" is configured twice", where, o.issuer));
    int sources = int(o.discovery) + int(!o.jwks_uri.empty()) + int(!o.jwks_file.empty()) +
                  int(!o.public_key_files.empty()) + int(!o.hmac_secret.empty());
    if (sources != 1)
      throw std::invalid_argument(where + ": give exactly one key source: discovery, jwks_uri, jwks_file, "
                                          "public_key_files or hmac_secret");
    for (const auto& a : o.algorithms)
      if (!parse_jws_alg(a) && !parse_hmac_alg(a))
        throw std::invalid_argument(fmt::format("{}.algorithms: \"{}\" is not a supported algorithm", where, a));
    Provider p;
    p.options = o;
    p.rules.issuer = o.issuer;
    p.rules.audiences = o.audiences;
    p.rules.require_exp = o.require_exp;
    p.rules.leeway = o.leeway;
    p.rules.typ = o.token_type;
    p.rules.required = o.required_claims;
    auto url_ok = [&](const std::string& url, const char* key) {
      bool https = url.rfind("https://", 0) == 0, http = url.rfind("http://", 0) == 0;
      if (!https && !(http && o.allow_http))
        throw std::invalid_argument(fmt::format("{}.{}: \"{}\" must be an https:// URL{}", where, key, url,
                                                http ? " (or set allow_http)" : ""));
    };
    if (!o.hmac_secret.empty()) {
      if (o.hmac_secret.size() < 32)
        throw std::invalid_argument(where + ".hmac_secret: must be at least 32 bytes (RFC 7518 3.2)");
    } else if (!o.jwks_file.empty()) {
      p.keys = make_fixed_key_provider(load_jwks_file(o.jwks_file), o.jwks_file);
    } else if (!o.public_key_files.empty()) {
      std::vector<VerificationKey> keys;
      for (const auto& f : o.public_key_files) {
        auto slash = f.find_last_of('/');
        std::string kid = f.substr(slash == std::string::npos ? 0 : slash + 1);
        kid = kid.substr(0, kid.find('.'));
        for (auto& k : load_pem_public_key(f, kid)) keys.push_back(std::move(k));
      }
      p.keys = make_fixed_key_provider(std::move(keys), join(o.public_key_files, ","));
    } else {
      if (o.discovery) url_ok(o.issuer, "issuer");
      else url_ok(o.jwks_uri, "jwks_uri");
      if (o.min_refresh_interval > o.max_refresh_interval)
        throw std::invalid_argument(where + ": min_refresh_interval must not exceed max_refresh_interval");
      RemoteKeySource source;
      source.issuer = o.issuer;
      source.jwks_uri = o.jwks_uri;
      source.ca_file = o.ca_file;
      source.allow_http = o.allow_http;
      source.refresh_interval = o.refresh_interval;
      source.min_refresh_interval = o.min_refresh_interval;
      source.max_refresh_interval = o.max_refresh_interval;
      source.fetch_timeout = o.fetch_timeout;
      p.keys = make_remote_key_provider(source);
    }
    providers_.push_back(std::move(p));
  }
}

bool JwtVerifier::allowed(const Provider& p, std::string_view alg) const noexcept {
  if (p.options.algorithms.empty()) return true;
  return std::find(p.options.algorithms.begin(), p.options.algorithms.end(), alg) != p.options.algorithms.end();
}

VerifyOutcome JwtVerifier::verify(std::string_view token, std::chrono::system_clock::time_point now,
                                  OnUnknownKid on_unknown) const {
  thread_local ReusableParser header_parser, payload_parser;
  std::string error;
  auto jws = split_compact_jws(token, max_token_bytes_, error);
  if (!jws) return fail("malformed_token", fmt::format("the token is not a signed JWT ({})", error));
  simdjson::dom::element header, payload;
  if (header_parser.parse(jws->header_json, header) != simdjson::SUCCESS || !header.is_object())
    return fail("malformed_token", "the token header is not a JSON object");
  if (payload_parser.parse(jws->payload_json, payload) != simdjson::SUCCESS || !payload.is_object())
    return fail("malformed_token", "the token payload is not a JSON object");

  std::string_view alg_name, kid, iss;
  if (header["alg"].get(alg_name) != simdjson::SUCCESS) return fail("malformed_token", "the token header has no alg");
  bool has_kid = header["kid"].get(kid) == simdjson::SUCCESS;
  if (!has_kid && header["kid"].error() != simdjson::NO_SUCH_FIELD)
    return fail("malformed_token", "the token header's kid is not a string");
  if (payload["iss"].get(iss) != simdjson::SUCCESS) return fail("unknown_issuer", "the token has no issuer (iss)");
  std::size_t index = providers_.size();
  for (std::size_t i = 0; i < providers_.size(); ++i)
    if (providers_[i].options.issuer == iss) index = i;
  if (index == providers_.size()) return fail("unknown_issuer", "the token's issuer is not trusted here");
  const Provider& p = providers_[index];

  VerifyOutcome out;
  out.provider = index;
  if (auto hmac = parse_hmac_alg(alg_name)) {
    // Only a secret configured for this issuer can check an HMAC: never a public key (the classic confusion).
    // RFC 7518 3.2: the key must be at least as long as the hash.
    const std::size_t min_key = *hmac == HmacAlg::HS256 ? 32 : *hmac == HmacAlg::HS384 ? 48 : 64;
    if (p.options.hmac_secret.size() < min_key || !allowed(p, alg_name))
      return fail("disallowed_algorithm", fmt::format("{} is not accepted for this issuer", alg_name), index);
    if (!verify_hmac_signature(*hmac, p.options.hmac_secret, jws->signing_input, jws->signature))
      return fail("bad_signature", "the token's signature does not verify", index);
    out.key_generation = 0;
  } else {
    auto alg = parse_jws_alg(alg_name);
    if (!alg || !p.keys || !allowed(p, alg_name))
      return fail("disallowed_algorithm",
                  fmt::format("the algorithm \"{}\" is not accepted for this issuer", alg_name.substr(0, 16)), index);
    auto snapshot = p.keys->current();
    if (!snapshot) {
      out.kind = VerifyOutcome::Kind::need_keys;
      out.attempts_seen = p.keys->attempts();
      return out;
    }
    out.key_generation = snapshot->generation;
    bool named = false, fitted = false, verified = false;
    for (const auto& key : snapshot->keys) {
      if (has_kid && key.kid != kid) continue;
      named = true;
      if (!key_fits(*alg, key)) continue;
      fitted = true;
      if (verify_jws_signature(*alg, key, jws->signing_input, jws->signature)) {
        verified = true;
        break;
      }
    }
    if (!named) {
      // The issuer may have rotated its keys: refresh early (at most once per min_refresh_interval), and let
      // every request that meets a new kid meanwhile wait for that same refresh.
      bool waiting = false;
      if (on_unknown == OnUnknownKid::probe) {
        waiting = p.keys->refresh_allowed() || p.keys->refresh_in_flight();
      } else if (on_unknown == OnUnknownKid::refresh) {
        p.keys->request_refresh();
        if (auto target = p.keys->refresh_in_flight()) {
          waiting = true;
          out.attempts_seen = *target;
        }
      }
      if (waiting) {
        out.kind = VerifyOutcome::Kind::unknown_kid;
        return out;
      }
      return fail("unknown_key", "the token was signed with a key the issuer does not publish", index);
    }
    if (!fitted)
      return fail("disallowed_algorithm", fmt::format("the issuer's key does not allow {}", alg_name), index);
    if (!verified) return fail("bad_signature", "the token's signature does not verify", index);
  }

  ValidatedClaims claims;
  if (auto failure = validate_claims(header, payload, p.rules, now, claims))
    return fail(failure->code, failure->message, index);
  for (const auto& rule : p.options.rules) {
    std::string why;
    if (!claim_rule_holds(payload, rule, why)) return fail("claim_rule_failed", "the token is not accepted: " + why, index);
  }

  auto identity = std::make_shared<Identity>();
  identity->method = "jwt";
  identity->subject = std::move(claims.subject);
  identity->issuer = std::move(claims.issuer);
  identity->client_id = std::move(claims.client_id);
  identity->email = std::move(claims.email);
  identity->scopes = std::move(claims.scopes);
  if (!p.options.groups_claim.empty()) identity->groups = claim_values(payload, p.options.groups_claim);
  identity->claims_json = jws->payload_json;
  out.kind = VerifyOutcome::Kind::verified;
  out.identity = std::move(identity);
  out.expires_at = claims.expires_at.value_or(std::numeric_limits<std::int64_t>::max());
  return out;
}

asio::awaitable<VerifyOutcome> verify_waiting_for_keys(const JwtVerifier& verifier, std::string_view token) {
  using Kind = VerifyOutcome::Kind;
  auto outcome = verifier.verify(token, std::chrono::system_clock::now(), JwtVerifier::OnUnknownKid::refresh);
  if (outcome.kind == Kind::need_keys) {
    // Cold start: wait for fetch attempts until one brings keys or the wait is over.
    const auto* keys = verifier.key_provider(outcome.provider);
    const auto deadline = std::chrono::steady_clock::now() + verifier.cold_start_wait(outcome.provider);
    while (outcome.kind == Kind::need_keys && std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      co_await keys->wait_for_attempt(outcome.attempts_seen, std::max(left, std::chrono::milliseconds(1)));
      outcome = verifier.verify(token, std::chrono::system_clock::now(), JwtVerifier::OnUnknownKid::fail);
    }
  } else if (outcome.kind == Kind::unknown_kid) {
    // The issuer may have rotated its keys: wait for the refresh just asked for, then decide.
    const auto* keys = verifier.key_provider(outcome.provider);
    co_await keys->wait_for_attempt(outcome.attempts_seen, verifier.cold_start_wait(outcome.provider));
    outcome = verifier.verify(token, std::chrono::system_clock::now(), JwtVerifier::OnUnknownKid::fail);
  }
  co_return outcome;
}

}  // namespace obsgw::auth
