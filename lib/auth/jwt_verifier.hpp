#pragma once
// Verifying one JWT against a set of trusted issuers: provider chosen by `iss`, algorithm pinned to the
// provider's keys, signature, registered claims, and the provider's claim rules. Thread-safe; no allocation
// beyond the resulting identity once the per-thread JSON parsers are warm.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/claims.hpp"
#include "auth/key_provider.hpp"
#include "obsgw/identity.hpp"
#include "obsgw/jwt_authenticator.hpp"

namespace obsgw::auth {

struct VerifyOutcome {
  enum class Kind {
    verified,
    failed,
    need_keys,    // the provider's keys were never fetched: wait for an attempt, then verify again
    unknown_kid,  // an early key refresh was requested: wait for it, then verify again (without refreshing)
  };
  Kind kind = Kind::failed;
  std::shared_ptr<const Identity> identity;
  std::int64_t expires_at = 0;  // unix seconds; INT64_MAX when the token has no exp
  std::size_t provider = 0;     // index of the provider that verified (or must be waited for)
  std::uint64_t key_generation = 0;
  std::uint64_t attempts_seen = 0;  // need_keys / unknown_kid: the provider's attempts() before waiting
  int status = 401;
  std::string code, message;
};

class JwtVerifier {
 public:
  // Throws std::invalid_argument / std::runtime_error naming the provider and the problem.
  JwtVerifier(const std::vector<JwtProviderOptions>& providers, std::size_t max_token_bytes);

  // What to do when the token names a kid the issuer's current keys lack.
  enum class OnUnknownKid {
    fail,     // refuse the token
    probe,    // report unknown_kid when an early refresh would be granted, without asking for it
    refresh,  // ask for the refresh; report unknown_kid when granted
  };
  VerifyOutcome verify(std::string_view token, std::chrono::system_clock::time_point now, OnUnknownKid on_unknown) const;

  const KeyProvider* key_provider(std::size_t provider) const noexcept { return providers_[provider].keys.get(); }
  std::chrono::milliseconds cold_start_wait(std::size_t provider) const noexcept {
    return providers_[provider].options.cold_start_wait;
  }
  std::size_t size() const noexcept { return providers_.size(); }

 private:
  struct Provider {
    JwtProviderOptions options;
    ClaimRules rules;
    std::shared_ptr<const KeyProvider> keys;  // null for HMAC-only providers
  };
  bool allowed(const Provider& p, std::string_view alg) const noexcept;

  std::vector<Provider> providers_;
  std::size_t max_token_bytes_;
};

// Verifies as verify(OnUnknownKid::refresh) does; when the keys are not there yet, waits for them (cold start, up
// to the provider's cold_start_wait) or for the early refresh an unknown kid asked for, then verifies again. The
// outcome is still need_keys when the provider stayed unreachable. `token` must outlive the wait.
asio::awaitable<VerifyOutcome> verify_waiting_for_keys(const JwtVerifier& verifier, std::string_view token);

// Whether `claims` satisfy `rule`; `why` says what is missing otherwise.
bool claim_rule_holds(simdjson::dom::element claims, const ClaimRule& rule, std::string& why);

}  // namespace obsgw::auth
