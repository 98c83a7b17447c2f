#pragma once
// A bounded cache of verified tokens, one per io thread (no locks, no sharing). A hit costs one fast hash of
// the token, a lookup and a comparison of the whole token — instead of a signature check or a call to the
// provider. The key is the token itself, not a cryptographic digest of it: a SHA-256 of a 700-byte token costs
// about 0.7 us, more than the rest of a cached request's authentication; and comparing the whole token makes a
// hash collision harmless. The caches of accepted tokens hold only tokens the gateway verified (or the provider
// vouched for), so a client cannot fill them, nor crowd their hash buckets; refusals go to a small cache apart.

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

  explicit TokenCache(std::size_t max_entries) : max_entries_(max_entries) {}

  // Tokens longer than this are verified every time rather than cached.
  static constexpr std::size_t kMaxCachedTokenBytes = 4096;

  // The live entry for `token` (now < expires_at), or null (an expired entry is removed).
  const Entry* find(std::string_view token, std::int64_t now);
  void insert(std::string_view token, Entry entry, std::int64_t now);
  void erase(std::string_view token);
  std::size_t size() const noexcept { return map_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::size_t max_entries_;
  std::size_t evict_cursor_ = 0;
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
};

// The calling thread's cache for the policy that owns `owner` (created on first use; dropped, on this
// thread's next lookup, once the owner is gone).
TokenCache& thread_token_cache(const std::shared_ptr<void>& owner, std::size_t max_entries);

}  // namespace obsgw::auth
