#include "auth/token_cache.hpp"

#include <openssl/sha.h>

#include "util/per_thread.hpp"

namespace obsgw::auth {

TokenDigest digest_token(std::string_view token) noexcept {
  TokenDigest d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.bytes.data());
  return d;
}

const TokenCache::Entry* TokenCache::find(std::string_view token, std::int64_t now) {
  auto it = map_.find(token);
  if (it == map_.end()) return nullptr;
  if (now >= it->second.expires_at) {
    map_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void TokenCache::erase(std::string_view token) {
  if (auto it = map_.find(token); it != map_.end()) map_.erase(it);
}

void TokenCache::insert(std::string_view token, Entry entry, std::int64_t now) {
  if (max_entries_ == 0 || token.size() > kMaxCachedTokenBytes) return;
  if (map_.size() >= max_entries_) {
    for (auto it = map_.begin(); it != map_.end();) it = now >= it->second.expires_at ? map_.erase(it) : std::next(it);
    // Still full of live tokens: drop an eighth, in table order (uncorrelated with age or client).
    for (std::size_t n = map_.size() >= max_entries_ ? max_entries_ / 8 + 1 : 0; n > 0 && !map_.empty(); --n)
      map_.erase(map_.begin());
  }
  map_.insert_or_assign(std::string(token), std::move(entry));
}

TokenCache& thread_token_cache(const std::shared_ptr<void>& owner, std::size_t max_entries) {
  return util::per_thread<TokenCache>(owner, [&] { return std::make_unique<TokenCache>(max_entries); });
}

}  // namespace obsgw::auth
