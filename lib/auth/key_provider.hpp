#pragma once
// Where a token issuer's public keys come from, and keeping them fresh.
//
// Fixed keys (a JWKS file, PEM files) are imported once when the config is built. Remote keys (an explicit
// jwks_uri, or OIDC discovery from the issuer) are fetched on the background loop, never on an io thread:
// refreshed periodically (the response's Cache-Control max-age within bounds), refreshed early when a token
// names an unknown kid (at most once per min_refresh_interval), retried with backoff while the provider is
// down, and the last good set keeps serving meanwhile. Remote providers are shared by every policy (and every
// reloaded config) naming the same source, so a reload neither refetches nor opens a cold-start window.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "auth/jwk.hpp"

namespace obsgw::auth {

struct RemoteKeySource {
  std::string issuer;    // discovery: <issuer>/.well-known/openid-configuration, whose "issuer" must match
  std::string jwks_uri;  // explicit; empty: discovered
  std::string ca_file;   // empty: the system's trust store
  bool allow_http = false;  // plain http:// URLs (tests, loopback setups); https is required otherwise
  std::chrono::seconds refresh_interval{300};      // when the response gives no max-age
  std::chrono::seconds min_refresh_interval{30};   // lower bound of max-age, and of refreshes on unknown kids
  std::chrono::seconds max_refresh_interval{3600}; // upper bound of max-age
  std::chrono::milliseconds fetch_timeout{5000};

  // Two policies with equal keys share one provider.
  std::string identity() const;
};

// One immutable set of keys; replaced as a whole when a fetch brings different keys.
struct KeySnapshot {
  std::vector<VerificationKey> keys;
  std::uint64_t generation = 0;  // increases whenever the keys change
};

class KeyProvider {
 public:
  virtual ~KeyProvider() = default;

  // The keys now; null while a remote provider has never been fetched successfully.
  virtual std::shared_ptr<const KeySnapshot> current() const noexcept = 0;
  // The generation of current() without touching the snapshot's reference count (a relaxed atomic read that
  // io threads can do per request).
  virtual std::uint64_t generation() const noexcept = 0;
  // Asks for an early refresh after a token named an unknown kid. Returns false when one was asked for less
  // than min_refresh_interval ago (the token is then refused at once) or the provider is fixed.
  virtual bool request_refresh() const noexcept { return false; }
  // Whether request_refresh() would be granted now (no side effect).
  virtual bool refresh_allowed() const noexcept { return false; }
  // While an early refresh is asked for and not yet done: the attempts() value it completes after. Requests
  // that meet an unknown kid meanwhile wait for it too, instead of being refused while it is on its way.
  virtual std::optional<std::uint64_t> refresh_in_flight() const noexcept { return std::nullopt; }
  // Completed fetch attempts, successful or not; lets a waiting request see that an attempt finished.
  virtual std::uint64_t attempts() const noexcept { return 0; }
  virtual bool remote() const noexcept { return false; }
  // Where the keys come from, for logs and error messages.
  virtual const std::string& description() const noexcept = 0;

  // Waits (polling on the caller's executor, never blocking it) until `attempts()` passes `seen_attempts`, or
  // `timeout` passes.
  asio::awaitable<void> wait_for_attempt(std::uint64_t seen_attempts, std::chrono::milliseconds timeout) const;
};

std::shared_ptr<const KeyProvider> make_fixed_key_provider(std::vector<VerificationKey> keys, std::string description);
// Shared per RemoteKeySource::identity(); starts fetching at once.
std::shared_ptr<const KeyProvider> make_remote_key_provider(const RemoteKeySource& source);

// Reads a JWKS file or PEM public keys (a kid per file: the file name without extension). Throws
// std::runtime_error naming the file and the problem.
std::vector<VerificationKey> load_jwks_file(const std::string& path);
std::vector<VerificationKey> load_pem_public_key(const std::string& path, const std::string& kid);

}  // namespace obsgw::auth
