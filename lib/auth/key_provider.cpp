#include "auth/key_provider.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <asio/experimental/as_tuple.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <simdjson.h>

#include "net/background_loop.hpp"
#include "net/http_client.hpp"
#include "server/metrics.hpp"
#include "util/event_log.hpp"

namespace obsgw::auth {

namespace {
using steady = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("cannot read \"{}\"", path));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Identifies a key set's content, so that a refresh bringing the same keys changes nothing downstream
// (verified-token caches stay valid).
std::string fingerprint(const std::vector<VerificationKey>& keys) {
  std::string out;
  for (const auto& k : keys) {
    out += k.kid + '\x1f' + k.alg + '\x1f';
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(k.pkey.get(), &der);
    if (len > 0) out.append(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
    OPENSSL_free(der);
    out += '\x1e';
  }
  return out;
}

using util::log_event;

class FixedKeyProvider final : public KeyProvider {
 public:
  FixedKeyProvider(std::vector<VerificationKey> keys, std::string description)
      : snapshot_(std::make_shared<KeySnapshot>(KeySnapshot{std::move(keys), 1})), description_(std::move(description)) {}
  std::shared_ptr<const KeySnapshot> current() const noexcept override { return snapshot_; }
  std::uint64_t generation() const noexcept override { return 1; }
  const std::string& description() const noexcept override { return description_; }

 private:
  std::shared_ptr<const KeySnapshot> snapshot_;
  std::string description_;
};

class RemoteKeyProvider final : public KeyProvider {
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};

 public:
  explicit RemoteKeyProvider(const RemoteKeySource& source) : state_(std::make_shared<State>(source)) {
    asio::co_spawn(state_->timer.get_executor(), run(state_), asio::detached);
  }
  ~RemoteKeyProvider() override {
    state_->stopped = true;
    if (!net::background_stopping()) asio::post(state_->timer.get_executor(), [s = state_] { s->timer.cancel(); });
  }

  std::shared_ptr<const KeySnapshot> current() const noexcept override { return state_->keys.load(); }
  std::uint64_t attempts() const noexcept override { return state_->attempts.load(); }
  std::uint64_t generation() const noexcept override { return state_->published.load(std::memory_order_relaxed); }
  bool remote() const noexcept override { return true; }
  const std::string& description() const noexcept override { return state_->description; }

  bool refresh_allowed() const noexcept override {
    std::lock_guard lock(state_->refresh_mutex);  // the unknown-kid path only: rare
    return !state_->last_refresh_request ||
           steady::now() - *state_->last_refresh_request >= state_->source.min_refresh_interval;
  }

  std::optional<std::uint64_t> refresh_in_flight() const noexcept override {
    std::lock_guard lock(state_->refresh_mutex);
    auto target = state_->refresh_done_after;
    if (target != kNone && state_->attempts.load() <= target) return target;
    return std::nullopt;
  }

  bool request_refresh() const noexcept override {
    {
      std::lock_guard lock(state_->refresh_mutex);
      auto now = steady::now();
      if (state_->last_refresh_request && now - *state_->last_refresh_request < state_->source.min_refresh_interval)
        return false;
      state_->last_refresh_request = now;
      // The refresh is the first fetch that starts after this point: one that is already under way may have
      // begun before the keys changed. Fetches are numbered as they start; attempts() counts finished ones.
      state_->refresh_done_after = state_->started.load();
      state_->refresh_wanted = true;
    }
    if (net::background_stopping()) return true;
    try {
      asio::post(state_->timer.get_executor(), [s = state_] { s->timer.cancel(); });
    } catch (...) {
      // The loop picks refresh_wanted up after its next fetch anyway.
    }
    return true;
  }

 private:
  struct State {
    explicit State(const RemoteKeySource& s)
        : source(s), client(s.ca_file), timer(net::background_executor()),
          description(s.jwks_uri.empty() ? s.issuer + " (discovery)" : s.jwks_uri) {}
    const RemoteKeySource source;
    const net::HttpClient client;
    asio::steady_timer timer;  // used on the background loop only
    const std::string description;
    std::atomic<std::shared_ptr<const KeySnapshot>> keys;
    std::atomic<std::uint64_t> attempts{0};
    std::atomic<std::uint64_t> published{0};  // generation of `keys`
    std::atomic<bool> stopped{false};
    std::atomic<std::uint64_t> started{0};   // fetches begun
    std::atomic<bool> refresh_wanted{false};
    mutable std::mutex refresh_mutex;        // guards the two below
    std::optional<steady::time_point> last_refresh_request;  // none yet: the first one is granted at once
    std::uint64_t refresh_done_after = kNone;
    // Background loop only:
    std::string jwks_uri;
    std::string fingerprint;
    std::uint64_t generation = 0;
    bool failing = false;
  };

  static bool scheme_allowed(const State& s, std::string_view url) {
    return url.substr(0, 8) == "https://" || (s.source.allow_http && url.substr(0, 7) == "http://");
  }

  static asio::awaitable<bool> discover(State& s, std::string& error) {
    std::string base = s.source.issuer;
    while (!base.empty() && base.back() == '/') base.pop_back();
    net::HttpClientRequest req;
    req.url = base + "/.well-known/openid-configuration";
    req.timeout = s.source.fetch_timeout;
    auto res = co_await s.client.fetch(req, error);
    if (!error.empty()) co_return false;
    if (res.status != 200) {
      error = fmt::format("{} answered {}", req.url, res.status);
      co_return false;
    }
    simdjson::dom::parser parser;
    simdjson::padded_string text(res.body);
    simdjson::dom::element doc;
    std::string_view issuer, jwks_uri;
    if (parser.parse(text).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
      error = fmt::format("{} is not a JSON object", req.url);
      co_return false;
    }
    // OIDC Discovery 4.3: the document must name exactly the issuer it was fetched for.
    if (doc["issuer"].get(issuer) != simdjson::SUCCESS || issuer != s.source.issuer) {
      error = fmt::format("{} names issuer \"{}\", expected \"{}\"", req.url, issuer, s.source.issuer);
      co_return false;
    }
    if (doc["jwks_uri"].get(jwks_uri) != simdjson::SUCCESS || !scheme_allowed(s, jwks_uri)) {
      error = fmt::format("{} has no usable jwks_uri{}", req.url, s.source.allow_http ? "" : " (https required)");
      co_return false;
    }
    s.jwks_uri = std::string(jwks_uri);
    co_return true;
  }

  // One attempt; on success publishes the keys and sets `max_age` from Cache-Control when present.
  static asio::awaitable<bool> fetch_once(State& s, std::string& error, std::optional<std::chrono::seconds>& max_age) {
    if (s.jwks_uri.empty()) {
      if (!s.source.jwks_uri.empty()) s.jwks_uri = s.source.jwks_uri;
      else if (!co_await discover(s, error)) co_return false;
    }
    net::HttpClientRequest req;
    req.url = s.jwks_uri;
    req.timeout = s.source.fetch_timeout;
    auto res = co_await s.client.fetch(req, error);
    bool ok = error.empty() && res.status == 200;
    if (error.empty() && res.status != 200) error = fmt::format("{} answered {}", req.url, res.status);
    JwkSet set;
    if (ok) {
      set = parse_jwk_set(res.body, error);
      ok = error.empty();
      if (ok && set.keys.empty()) {
        std::string skipped;
        for (const auto& why : set.skipped) skipped += (skipped.empty() ? "" : "; ") + why;
        error = fmt::format("{} has no usable signing key{}", req.url, skipped.empty() ? "" : " (" + skipped + ")");
        ok = false;
      } else if (!ok) {
        error = fmt::format("{}: {}", req.url, error);
      }
    }
    if (!ok) {
      if (s.source.jwks_uri.empty()) s.jwks_uri.clear();  // the provider may have moved it: discover again
      co_return false;
    }
    if (auto cc = res.headers.get("cache-control")) max_age = net::cache_max_age(*cc);
    auto print = fingerprint(set.keys);
    if (print != s.fingerprint || !s.keys.load()) {
      s.fingerprint = std::move(print);
      auto snapshot = std::make_shared<KeySnapshot>(KeySnapshot{std::move(set.keys), ++s.generation});
      std::string kids;
      for (const auto& k : snapshot->keys) kids += (kids.empty() ? "" : ",") + (k.kid.empty() ? "(none)" : k.kid);
      std::size_t count = snapshot->keys.size();
      s.keys.store(std::move(snapshot));
      s.published.store(s.generation);
      log_event(LogLevel::info, "identity provider keys loaded",
                {{"source", s.description}, {"keys", count}, {"kids", kids}, {"generation", s.generation}});
      for (const auto& why : set.skipped)
        log_event(LogLevel::warn, "identity provider key skipped", {{"source", s.description}, {"reason", why}});
    }
    co_return true;
  }

  static asio::awaitable<void> run(std::shared_ptr<State> s) {
    using std::chrono::seconds;
    seconds backoff(1);
    const seconds max_backoff = std::min<seconds>(s->source.refresh_interval, seconds(60));
    while (!s->stopped) {
      std::string error;
      std::optional<seconds> max_age;
      bool ok = false;
      s->refresh_wanted = false;
      s->started.fetch_add(1);
      try {
        ok = co_await fetch_once(*s, error, max_age);
      } catch (const std::exception& e) {
        error = e.what();
      }
      s->attempts.fetch_add(1);
      seconds next = backoff;
      try {  // nothing may end this loop but stopping: a dead loop would never refresh the keys again
        detail::Metrics::instance().key_fetches.add(s->description + '\x1f' + (ok ? "success" : "failure"));
        if (ok) {
          if (s->failing) log_event(LogLevel::info, "identity provider reachable again", {{"source", s->description}});
          s->failing = false;
          backoff = seconds(1);
          // At least a second between fetches, whatever the provider's Cache-Control says (max-age=0, no-cache).
          next = max_age ? std::clamp(*max_age, std::max(s->source.min_refresh_interval, seconds(1)),
                                      s->source.max_refresh_interval)
                         : s->source.refresh_interval;
        } else {
          s->failing = true;
          log_event(LogLevel::warn, "identity provider keys could not be fetched",
                    {{"source", s->description}, {"error", error}, {"retry_in_s", backoff.count()},
                     {"serving", s->keys.load() ? "last good keys" : "nothing yet"}});
          next = backoff;
          backoff = std::min(backoff * 2, max_backoff);
        }
      } catch (...) {
      }
      if (s->stopped) break;
      if (s->refresh_wanted) continue;  // asked for while this fetch ran: fetch again now
      s->timer.expires_after(next);
      co_await s->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    }
  }

  std::shared_ptr<State> state_;
};
}  // namespace

std::string RemoteKeySource::identity() const {
  // The CA file's size and time are part of it: a reload after the bundle was replaced builds a new TLS context.
  std::string ca_version;
  std::error_code ec;
  if (!ca_file.empty()) {
    auto size = std::filesystem::file_size(ca_file, ec);
    auto time = std::filesystem::last_write_time(ca_file, ec).time_since_epoch().count();
    ca_version = fmt::format("{}:{}", ec ? 0 : size, ec ? 0 : time);
  }
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", issuer, jwks_uri, ca_file, ca_version,
                     allow_http, refresh_interval.count(), min_refresh_interval.count(), max_refresh_interval.count(),
                     fetch_timeout.count());
}

asio::awaitable<void> KeyProvider::wait_for_attempt(std::uint64_t seen_attempts, std::chrono::milliseconds timeout) const {
  // Polling (only while a request waits for a cold start or a key rotation) keeps the background loop from ever
  // touching an io thread's objects. The interval grows from 5 ms to 100 ms, so that many waiting requests
  // during an outage cost little, while a fetch that completes quickly is seen quickly.
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = steady::now() + timeout;
  std::chrono::milliseconds interval(5);
  while (attempts() <= seen_attempts) {
    auto now = steady::now();
    if (now >= deadline) break;
    timer.expires_after(std::min<steady::duration>(interval, deadline - now));
    interval = std::min(interval * 2, std::chrono::milliseconds(100));
    co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
}

std::shared_ptr<const KeyProvider> make_fixed_key_provider(std::vector<VerificationKey> keys, std::string description) {
  return std::make_shared<FixedKeyProvider>(std::move(keys), std::move(description));
}

std::shared_ptr<const KeyProvider> make_remote_key_provider(const RemoteKeySource& source) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<const KeyProvider>> shared;
  std::lock_guard lock(mutex);
  auto& slot = shared[source.identity()];
  if (auto existing = slot.lock()) return existing;
  std::shared_ptr<const KeyProvider> created = std::make_shared<RemoteKeyProvider>(source);
  slot = created;
  // Config validation builds policies once and discards them before the real build (and a reload builds new
  // ones while the old still serve): keep a new provider alive a little while so those share one fetcher.
  auto linger = std::make_shared<asio::steady_timer>(net::background_executor(), std::chrono::seconds(30));
  linger->async_wait([linger, created](std::error_code) {});
  return created;
}

std::vector<VerificationKey> load_jwks_file(const std::string& path) {
  std::string error;
  auto set = parse_jwk_set(read_file(path), error);
  if (!error.empty()) throw std::runtime_error(fmt::format("\"{}\": {}", path, error));
  if (set.keys.empty()) {
    std::string skipped;
    for (const auto& why : set.skipped) skipped += (skipped.empty() ? "" : "; ") + why;
    throw std::runtime_error(fmt::format("\"{}\" has no usable signing key{}", path, skipped.empty() ? "" : " (" + skipped + ")"));
  }
  return std::move(set.keys);
}

std::vector<VerificationKey> load_pem_public_key(const std::string& path, const std::string& kid) {
  std::string pem = read_file(path);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  EVP_PKEY* raw = nullptr;
  if (pem.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
    if (cert) raw = X509_get_pubkey(cert.get());
  } else {
    raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  }
  if (!raw) throw std::runtime_error(fmt::format("\"{}\" is not a PEM public key or certificate", path));
  VerificationKey key;
  key.kid = kid;
  key.pkey = std::shared_ptr<EVP_PKEY>(raw, EVP_PKEY_free);
  if (EVP_PKEY_is_a(raw, "RSA")) {
    if (EVP_PKEY_get_bits(raw) < 2048)
      throw std::runtime_error(fmt::format("\"{}\": RSA key of {} bits (at least 2048 required)", path, EVP_PKEY_get_bits(raw)));
    key.kind = KeyKind::rsa;
  } else if (EVP_PKEY_is_a(raw, "EC")) {
    char group[32] = {};
    EVP_PKEY_get_utf8_string_param(raw, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr);
    std::string_view g(group);
    if (g == "prime256v1" || g == "P-256") key.kind = KeyKind::ec_p256;
    else if (g == "secp384r1" || g == "P-384") key.kind = KeyKind::ec_p384;
    else throw std::runtime_error(fmt::format("\"{}\": EC curve \"{}\" is not supported (P-256, P-384)", path, g));
  } else if (EVP_PKEY_is_a(raw, "ED25519")) {
    key.kind = KeyKind::ed25519;
  } else {
    throw std::runtime_error(fmt::format("\"{}\": unsupported key type (RSA, EC P-256/P-384, Ed25519)", path));
  }
  return {std::move(key)};
}

}  // namespace obsgw::auth
