#pragma once
// A bounded cache of verified tokens, one per io thread (no locks, no sharing), keyed by the SHA-256 of the
// token so that the cache never holds a usable credential. A hit costs one hash and one lookup instead of a
// signature check or a call to the provider.

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
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
    std::int64_t expires_at = 0;  // unix seconds; the entry is dropped after this
    std::uint32_t provider = 0;
    std::uint64_t key_generation = 0;  // the entry is void once the provider's keys changed
  };

  explicit TokenCache(std::size_t max_entries) : max_entries_(max_entries) {}

  // The live entry for `digest`, or null (an expired entry is removed).
  const Entry* find(const TokenDigest& digest, std::int64_t now);
  void insert(const TokenDigest& digest, Entry entry, std::int64_t now);
  void erase(const TokenDigest& digest) { map_.erase(digest); }
  std::size_t size() const noexcept { return map_.size(); }

 private:
  std::size_t max_entries_;
  std::unordered_map<TokenDigest, Entry, TokenDigestHash> map_;
};

// The calling thread's cache for the policy that owns `owner` (created on first use; dropped, on this
// thread's next lookup, once the owner is gone).
TokenCache& thread_token_cache(const std::shared_ptr<void>& owner, std::size_t max_entries);

}  // namespace obsgw::auth
