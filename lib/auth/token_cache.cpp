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
    // Evict one entry per insert, so no insert pays for a sweep: the first of a bucket after a rotating cursor —
    // an expired one when found within a few steps (table order is unrelated to age or client).
    // Candidates are looked at through bucket iterators; only the one chosen is looked up to be erased, since
    // every lookup hashes a whole token (several hundred bytes).
    const std::string* victim = nullptr;
    for (std::size_t tries = 0; tries < 8; ++tries) {
      evict_cursor_ = (evict_cursor_ + 1) % map_.bucket_count();
      auto local = map_.begin(evict_cursor_);
      if (local == map_.end(evict_cursor_)) continue;
      if (!victim) victim = &local->first;
      if (now >= local->second.expires_at) {
        victim = &local->first;
        break;
      }
    }
    map_.erase(victim ? map_.find(*victim) : map_.begin());
  }
  map_.insert_or_assign(std::string(token), std::move(entry));
}

TokenCache& thread_token_cache(const std::shared_ptr<void>& owner, std::size_t max_entries) {
  return util::per_thread<TokenCache>(owner, [&] { return std::make_unique<TokenCache>(max_entries); });
}

}  // namespace obsgw::auth
