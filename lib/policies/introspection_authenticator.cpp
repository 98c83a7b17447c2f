#include "obsgw/introspection_authenticator.hpp"

#include <atomic>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>
#include <simdjson.h>

#include "auth/challenge.hpp"
#include "auth/token_answer.hpp"
#include "auth/token_cache.hpp"
#include "http/form_encoding.hpp"
#include "net/http_client.hpp"
#include "server/metrics.hpp"
#include "util/event_log.hpp"
#include "util/log_throttle.hpp"

namespace obsgw {

namespace {
using Mode = IntrospectionAuthenticatorOptions::Mode;

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class IntrospectionAuthenticator final : public Authenticator {
 public:
  explicit IntrospectionAuthenticator(IntrospectionAuthenticatorOptions o)
      : options_(std::move(o)), cache_owner_(std::make_shared<char>()), refusals_owner_(std::make_shared<char>()) {
    const bool https = options_.endpoint.rfind("https://", 0) == 0, http = options_.endpoint.rfind("http://", 0) == 0;
    if (!https && !(http && options_.allow_http))
      throw std::invalid_argument(fmt::format("endpoint: \"{}\" must be an https:// URL", options_.endpoint));
    if (options_.mode == Mode::introspection && options_.client_id.empty())
      throw std::invalid_argument("client_id: required for introspection (RFC 7662 2.1 authenticates the caller)");
    if (options_.sources.empty()) throw std::invalid_argument("token_sources: at least one source is required");
    options_.identity_headers.validate();
    client_ = std::make_shared<net::HttpClient>(options_.ca_file);  // throws for an unreadable CA file
    endpoint_name_ = options_.mode == Mode::introspection ? "introspection" : "userinfo";
  }

  std::vector<std::string> owned_request_headers() const override { return identity_header_names(options_.identity_headers); }
  std::string_view name() const noexcept override {
    return options_.mode == Mode::introspection ? "introspection" : "userinfo";
  }

  Verdict on_request(Exchange& ex) const override {
    options_.identity_headers.strip(ex.request().headers);
    auto found = find_token(ex.request(), options_.sources);
    if (!found)
      return auth::unauthorized(options_.realm, auth::Challenge::none_given, "missing_token", "this route requires a bearer token");
    if (found->value().empty() || found->value().size() > 16384)
      return auth::unauthorized(options_.realm, auth::Challenge::invalid_token, "malformed_credentials",
                                "the credentials are empty, too large, or given more than once");
    auto& metrics = detail::Metrics::instance().auth();
    const auto now = unix_now();
    if (const auto* e = cache().find(found->value(), now)) {
      metrics.opaque_cache_hits.fetch_add(1, std::memory_order_relaxed);
      accept(ex, e->identity, *found->source);
      return Verdict::proceed();
    }
    if (refusals().find(found->value(), now)) {
      metrics.opaque_cache_hits.fetch_add(1, std::memory_order_relaxed);
      return inactive();
    }
    metrics.opaque_cache_misses.fetch_add(1, std::memory_order_relaxed);
    return Verdict::suspend();
  }

  asio::awaitable<Verdict> on_request_async(Exchange& ex) const override {
    auto found = find_token(ex.request(), options_.sources);
    if (!found || found->value().empty()) co_return Verdict::reject(500, "internal_error", "credential vanished");
    net::HttpClientRequest req;
    req.url = options_.endpoint;
    req.timeout = options_.timeout;
    req.max_body = 64 * 1024;  // the answer is kept as the identity's claims for cache_ttl
    if (options_.mode == Mode::introspection) {
      req.method = "POST";
      req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
      req.headers.push_back(
          {"Authorization", http::client_basic_authorization(options_.client_id, options_.client_secret)});
      req.body = "token=" + http::form_encode(found->value()) + "&token_type_hint=access_token";
    } else {
      req.headers.push_back({"Authorization", std::string("Bearer ").append(found->value())});
    }
    std::string error;
    auto res = co_await client_->fetch(req, error);
    auto& checks = detail::Metrics::instance().token_checks;
    // What the provider's status says about the token: introspection answers 200 for every token it could check
    // (active or not) and 400 for a token it will not check (say, a JWT); userinfo answers 401/403 for a bad
    // token. Anything else (5xx, 404 of a wrong endpoint, 429, redirects) is the provider failing, not the token.
    const bool token_refused = options_.mode == Mode::introspection ? res.status == 400
                                                                    : (res.status == 401 || res.status == 403);
    if (!error.empty() || (res.status != 200 && !token_refused)) {
      checks.add(endpoint_name_ + "\x1f" "error");
      log_failure(error.empty() ? fmt::format("{} answered {}", endpoint_name_, res.status) : error);
      co_return Verdict::reject(503, "identity_provider_unavailable",
                                "identity provider unavailable: the token could not be checked")
          .with_header("Retry-After", "5");
    }
    const std::int64_t now = unix_now();
    std::string why;
    std::int64_t expires_at = std::numeric_limits<std::int64_t>::max();
    if (token_refused) why = options_.mode == Mode::introspection ? "the provider refused to check the token" : "";
    auto identity = res.status == 200 ? auth::read_token_answer(res.body, options_, now, expires_at, why) : nullptr;
    if (!identity) {
      checks.add(endpoint_name_ + "\x1f" "refused");
      // Remember refusals briefly, so that a client retrying a dead token does not hammer the provider.
      refusals().insert(found->value(), {nullptr, now + std::min<std::int64_t>(options_.cache_ttl.count(), 5), 0, 0}, now);
      co_return inactive(why);
    }
    checks.add(endpoint_name_ + "\x1f" "active");
    cache().insert(found->value(), {identity, std::min(expires_at, now + options_.cache_ttl.count()), 0, 0}, now);
    accept(ex, std::move(identity), *found->source);
    co_return Verdict::proceed();
  }

 private:

  Verdict inactive(std::string_view why = {}) const {
    return auth::unauthorized(options_.realm, auth::Challenge::invalid_token, "inactive_token",
                              why.empty() ? std::string_view("the token is not active") : why);
  }

  void accept(Exchange& ex, std::shared_ptr<const Identity> identity, const TokenSource&) const {
    options_.identity_headers.apply(*identity, ex.request().headers);
    if (!options_.forward_token)  // every configured place: a second credential must not reach the upstream either
      for (const auto& s : options_.sources) remove_token(ex.request(), s);
    ex.identity = std::move(identity);
  }

  // The provider's failure in the log (at most one line a second per policy), never in the answer.
  void log_failure(const std::string& detail) const {
    if (!failure_log_.allow()) return;
    if (auto logger = util::event_logger(); logger && logger->enabled(LogLevel::warn))
      logger->log(LogLevel::warn, "token check failed", {{"endpoint", options_.endpoint}, {"error", detail}});
  }

  auth::TokenCache& cache() const { return auth::thread_token_cache(cache_owner_, options_.cache_entries); }
  // Refusals apart and few: a client sending garbage tokens must not push accepted tokens out of cache().
  auth::TokenCache& refusals() const {
    return auth::thread_token_cache(refusals_owner_, std::min<std::size_t>(options_.cache_entries, 1024));
  }

  IntrospectionAuthenticatorOptions options_;
  std::shared_ptr<void> cache_owner_;
  std::shared_ptr<void> refusals_owner_;
  std::shared_ptr<net::HttpClient> client_;
  std::string endpoint_name_;
  mutable util::LogThrottle failure_log_;
};
}  // namespace

std::shared_ptr<const Authenticator> make_introspection_authenticator(IntrospectionAuthenticatorOptions options) {
  return std::make_shared<IntrospectionAuthenticator>(std::move(options));
}

}  // namespace obsgw
