#pragma once
// A bounded cache of verified tokens, one per io thread (no locks, no sharing). A hit costs one fast hash of
// the token, a lookup and a comparison of the whole token — instead of a signature check or a call to the
// provider. The key is the token itself, not a cryptographic digest of it: a SHA-256 of a 700-byte token costs
// about 0.7 us, more than the rest of a cached request's authentication; and comparing the whole token makes a
// hash collision harmless.
//
// The hash is SipHash with the process's random key (util/keyed_hash.hpp), so colliding tokens cannot be worked
// out offline. Which bytes it reads (Hashing):
// - Hashing::sampled, for verified JWTs only: their first 16 and last 48 bytes and their length. A JWT ends with
//   its signature over everything before it, so the sample is as good as random and cannot be chosen apart from
//   the rest; hashing a 700-byte token three times per new token (lookup, insert, eviction) cost about 4% of a
//   request that verifies an RS256 signature. Only verified tokens are inserted, so a client can neither fill
//   the cache nor crowd one bucket: a made-up token that imitates a cached one's sample reaches only its bucket.
// - Hashing::whole, for everything else (opaque tokens, whose format a provider chooses; refusals, which the
//   client chooses): every byte.
//
// Once full, the cache admits a newcomer in place of a live entry only when the same token was turned away
// recently (a doorkeeper, as in TinyLFU): a client that sends a new token on every request then pays for its
// own checks but neither churns out the tokens of steady clients nor costs an eviction per request. A token
// turned away is simply checked again on its next use, and admitted then (unless thousands of other new tokens
// came in between).

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "obsgw/identity.hpp"

namespace obsgw::auth {

struct TokenDigest {
  std::array<unsigned char, 32> bytes{};
  bool operator==(const TokenDigest& o) const noexcept { return bytes == o.bytes; }
};
TokenDigest digest_token(std::string_view token) noexcept;

struct TokenDigestHash {
  std::size_t operator()(const TokenDigest& d) const noexcept {
    std::size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

class TokenCache {
 public:
  struct Entry {
    std::shared_ptr<const Identity> identity;
    std::int64_t expires_at = 0;  // unix seconds; the entry is dropped from this second on (as a JWT's exp)
    std::uint32_t provider = 0;
    std::uint64_t key_generation = 0;  // the entry is void once the provider's keys changed
  };
  enum class Hashing { sampled, whole };

  explicit TokenCache(std::size_t max_entries, Hashing hashing = Hashing::whole);

  // Tokens longer than this are verified every time rather than cached.
  static constexpr std::size_t kMaxCachedTokenBytes = 4096;

  // The live entry for `token` (now < expires_at), or null (an expired entry is removed).
  const Entry* find(std::string_view token, std::int64_t now);
  // Stores (or replaces) the entry for `token`; when the cache is full this may decline (see above).
  void insert(std::string_view token, Entry entry, std::int64_t now);
  void erase(std::string_view token);
  std::size_t size() const noexcept { return map_.size(); }
  std::size_t hash(std::string_view token) const { return map_.hash_function()(token); }  // for tests

 private:
  struct Hash {
    using is_transparent = void;
    bool whole = true;
    // Not noexcept on purpose: libstdc++ then keeps each node's hash, so walking a bucket never hashes again.
    std::size_t operator()(std::string_view token) const;
  };
  // One entry out, preferring an expired one; false when none is expired and `newcomer` was not seen lately.
  bool make_room(std::size_t newcomer, std::int64_t now);
  bool seen_lately(std::size_t hash);  // and if not, remembers it from now on

  std::size_t max_entries_;
  std::size_t evict_cursor_ = 0;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
  std::vector<std::uint64_t> doorkeeper_;  // a two-probe Bloom filter of tokens turned away since its last clearing
  std::size_t doorkeeper_marks_ = 0;
};

// The calling thread's cache for the policy that owns `owner` (created on first use; dropped, on this
// thread's next lookup, once the owner is gone).
TokenCache& thread_token_cache(const std::shared_ptr<void>& owner, std::size_t max_entries,
                               TokenCache::Hashing hashing = TokenCache::Hashing::whole);

}  // namespace obsgw::auth
