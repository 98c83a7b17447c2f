#include <charconv>
#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "obsgw/signing_policies.hpp"
#include "signing/replay_cache.hpp"

namespace obsgw {

namespace {

class HmacAuthenticator final : public Authenticator {
 public:
  explicit HmacAuthenticator(HmacAuthenticatorOptions o) : options_(std::move(o)) {
    if (options_.clients.empty()) throw std::invalid_argument("an hmac authenticator needs at least one client key");
    if (options_.window.count() <= 0) throw std::invalid_argument("window must be > 0");
    std::vector<std::shared_ptr<const SigningKey>> keys;
    for (const auto& c : options_.clients) {
      if (!c.key) throw std::invalid_argument("a client without a key");
      for (const auto& k : keys)
        if (k->id() == c.key->id()) throw std::invalid_argument(fmt::format("key id \"{}\" is listed twice", k->id()));
      keys.push_back(c.key);
      auto id = std::make_shared<Identity>();
      id->method = "hmac";
      id->subject = c.subject.empty() ? c.key->id() : c.subject;
      id->client_id = c.key->id();
      id->allowed_tenants = c.tenants;
      id->scopes = c.scopes;
      id->groups = c.groups;
      identities_.push_back(std::move(id));
    }
    verifier_ = std::make_unique<SignatureVerifier>(std::move(keys), options_.window);
  }

  std::string_view name() const noexcept override { return "hmac"; }
  std::size_t body_limit() const noexcept override { return options_.max_body_bytes; }
  // Only for a request that may pass the cheap checks: anyone can send a body, not everyone a known key id.
  bool needs_body_sha256(const Exchange& ex) const noexcept override {
    const auto& h = ex.request().headers;
    const auto kid = h.get(kSignatureKeyIdHeader);
    if (!kid || !h.contains(kSignatureHeader)) return false;
    for (const auto& c : options_.clients)
      if (c.key->id() == *kid) return true;
    return false;
  }
  std::vector<std::string> owned_request_headers() const override {
    std::vector<std::string> out;
    for (auto h : kSignatureHeaders) out.emplace_back(h);
    return out;
  }

  Verdict on_request(Exchange& ex) const override {
    RequestHead& req = ex.request();
    std::string target = ex.client_path();
    if (!req.query.empty()) target.append(1, '?').append(req.query);
    const std::string* body = ex.buffered_body();
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::string key_id;
    const std::string* digest = ex.buffered_body_sha256();  // hashed as it arrived
    auto result = digest ? verifier_->verify_digest(req.method, target, req.headers, *digest, now, &key_id)
                         : verifier_->verify(req.method, target, req.headers, body ? std::string_view(*body) : std::string_view{},
                                             now, &key_id);
    if (result == SignatureVerifier::Result::ok && options_.reject_replays) {
      // Remembered for as long as the signature stays acceptable: a timestamp ahead of our clock is valid until
      // it falls `window` behind it.
      const auto ts_text = *req.headers.get(kSignatureTimestampHeader);
      std::int64_t ts = now;
      std::from_chars(ts_text.data(), ts_text.data() + ts_text.size(), ts);
      switch (replays_.first_use(*req.headers.get(kSignatureHeader), now, std::max(now, ts) + options_.window.count())) {
        case signing::ReplayCache::Use::first: break;
        case signing::ReplayCache::Use::replay:
          return refuse("replayed", "this signature was already used; sign each request anew");
        case signing::ReplayCache::Use::full:
          return Verdict::reject(503, "replay_cache_full", "too many signed requests are being remembered; retry shortly")
              .with_header("Retry-After", "1");
      }
    }
    if (result != SignatureVerifier::Result::ok) return refuse(to_string(result), message_for(result));
    req.headers.remove_all(kSignatureHeaders);
    for (std::size_t i = 0; i < options_.clients.size(); ++i)
      if (options_.clients[i].key->id() == key_id) ex.identity = identities_[i];
    return Verdict::proceed();
  }

 private:
  static const char* message_for(SignatureVerifier::Result r) {
    switch (r) {
      case SignatureVerifier::Result::missing: return "the request is not signed (X-Gateway-Signature)";
      case SignatureVerifier::Result::malformed: return "a signature header is missing, repeated or malformed";
      case SignatureVerifier::Result::unknown_key: return "X-Gateway-Key-Id names no known key";
      case SignatureVerifier::Result::stale: return "X-Gateway-Timestamp is outside the accepted window";
      case SignatureVerifier::Result::body_mismatch: return "the body does not match X-Gateway-Content-SHA256";
      case SignatureVerifier::Result::bad_signature: return "the signature does not match the request";
      case SignatureVerifier::Result::ok: break;
    }
    return "invalid signature";
  }

  static Verdict refuse(std::string_view reason, std::string_view message) {
    return Verdict::reject(401, "invalid_signature", fmt::format("{} ({})", message, reason))
        .with_header("WWW-Authenticate", "OBSGW-HMAC-SHA256 realm=\"obsgw\"");
  }

  HmacAuthenticatorOptions options_;
  std::vector<std::shared_ptr<const Identity>> identities_;
  std::unique_ptr<SignatureVerifier> verifier_;
  mutable signing::ReplayCache replays_;
};

}  // namespace

std::shared_ptr<const Authenticator> make_hmac_authenticator(HmacAuthenticatorOptions options) {
  return std::make_shared<HmacAuthenticator>(std::move(options));
}

}  // namespace obsgw
