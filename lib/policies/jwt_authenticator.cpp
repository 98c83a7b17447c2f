#include "obsgw/jwt_authenticator.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "auth/challenge.hpp"
#include "auth/jwt_verifier.hpp"
#include "auth/token_cache.hpp"
#include "server/metrics.hpp"

namespace obsgw {

namespace {
using auth::VerifyOutcome;
using OnUnknownKid = auth::JwtVerifier::OnUnknownKid;
// Verified JWTs end with a signature over the rest: a sample of the token is as good as the whole for the hash.
constexpr auto kSampledHash = auth::TokenCache::Hashing::sampled;

std::int64_t unix_now(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

class JwtAuthenticator final : public Authenticator {
 public:
  explicit JwtAuthenticator(JwtAuthenticatorOptions options)
      : options_(std::move(options)),
        verifier_(options_.providers, options_.max_token_bytes),
        cache_owner_(std::make_shared<char>()) {
    if (options_.sources.empty()) throw std::invalid_argument("token_sources: at least one source is required");
    options_.identity_headers.validate();
    for (const auto& s : options_.sources) basic_ = basic_ || s.kind == TokenSource::Kind::basic;
  }

  std::string_view name() const noexcept override { return "jwt"; }
  std::vector<std::string> owned_request_headers() const override { return identity_header_names(options_.identity_headers); }

  Verdict on_request(Exchange& ex) const override {
    options_.identity_headers.strip(ex.request().headers);
    auto found = find_token(ex.request(), options_.sources);
    if (!found)
      return auth::unauthorized(options_.realm, auth::Challenge::none_given, "missing_token",
                                "this route requires a bearer token", basic_);
    if (found->value().empty())
      return auth::unauthorized(options_.realm, auth::Challenge::invalid_token, "malformed_credentials",
                                "the credentials are empty, malformed or given more than once", basic_);
    const auto now = std::chrono::system_clock::now();
    auto& counters = detail::Metrics::instance().auth();
    if (options_.cache_entries > 0) {
      auto& cache = auth::thread_token_cache(cache_owner_, options_.cache_entries, kSampledHash);
      if (const auto* e = cache.find(found->value(), unix_now(now))) {
        const auto* keys = verifier_.key_provider(e->provider);
        if (!keys || keys->generation() == e->key_generation) {
          counters.jwt_cache_hits.fetch_add(1, std::memory_order_relaxed);
          accept(ex, e->identity, *found->source);
          return Verdict::proceed();
        }
        cache.erase(found->value());  // the issuer's keys changed since: verify again
      }
      counters.jwt_cache_misses.fetch_add(1, std::memory_order_relaxed);
    }
    auto outcome = verifier_.verify(found->value(), now, OnUnknownKid::probe);
    if (outcome.kind == VerifyOutcome::Kind::need_keys || outcome.kind == VerifyOutcome::Kind::unknown_kid)
      return Verdict::suspend();
    return finish(ex, *found, std::move(outcome));
  }

  asio::awaitable<Verdict> on_request_async(Exchange& ex) const override {
    auto found = find_token(ex.request(), options_.sources);  // on_request saw it: present and non-empty
    if (!found || found->value().empty()) co_return Verdict::reject(500, "internal_error", "credential vanished");
    auto outcome = co_await auth::verify_waiting_for_keys(verifier_, found->value());
    if (outcome.kind == VerifyOutcome::Kind::need_keys)
      // The detail (which URL, which error) is in the gateway's log, not in an answer to anyone who asks.
      co_return Verdict::reject(503, "identity_provider_unavailable",
                                "identity provider unavailable: its signing keys could not be fetched yet")
          .with_header("Retry-After", "5");
    co_return finish(ex, *found, std::move(outcome));
  }

 private:
  Verdict finish(Exchange& ex, const FoundToken& found, VerifyOutcome outcome) const {
    if (outcome.kind != VerifyOutcome::Kind::verified)
      return auth::unauthorized(options_.realm, auth::Challenge::invalid_token,
                                outcome.kind == VerifyOutcome::Kind::failed ? outcome.code : "unknown_key",
                                outcome.kind == VerifyOutcome::Kind::failed
                                    ? outcome.message
                                    : "the token was signed with a key the issuer does not publish",
                                basic_);
    detail::Metrics::instance().auth().jwt_verified.fetch_add(1, std::memory_order_relaxed);
    if (options_.cache_entries > 0) {
      auth::TokenCache::Entry entry{outcome.identity, outcome.expires_at, static_cast<std::uint32_t>(outcome.provider),
                                    outcome.key_generation};
      auth::thread_token_cache(cache_owner_, options_.cache_entries, kSampledHash)
          .insert(found.value(), std::move(entry), unix_now(std::chrono::system_clock::now()));
    }
    accept(ex, std::move(outcome.identity), *found.source);
    return Verdict::proceed();
  }

  void accept(Exchange& ex, std::shared_ptr<const Identity> identity, const TokenSource&) const {
    options_.identity_headers.apply(*identity, ex.request().headers);
    // Every configured place, not only the one used: a second credential must not reach the upstream either.
    if (!options_.forward_token)
      for (const auto& s : options_.sources) remove_token(ex.request(), s);
    ex.identity = std::move(identity);
  }

  JwtAuthenticatorOptions options_;
  auth::JwtVerifier verifier_;
  std::shared_ptr<void> cache_owner_;  // identifies this policy's per-thread caches
  bool basic_ = false;
};
}  // namespace

std::shared_ptr<const Authenticator> make_jwt_authenticator(JwtAuthenticatorOptions options) {
  return std::make_shared<JwtAuthenticator>(std::move(options));
}

}  // namespace obsgw
