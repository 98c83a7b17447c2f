#include "auth/token_cache.hpp"

#include <algorithm>

#include <openssl/sha.h>

#include "util/keyed_hash.hpp"
#include "util/per_thread.hpp"

namespace obsgw::auth {

namespace {
constexpr std::size_t kHeadSample = 16, kTailSample = 48;
constexpr std::size_t kDoorkeeperBits = std::size_t{1} << 16;  // 8 KB per cache
// Cleared after this many marks: just before a clearing two probes per mark leave about one bit in five set, so
// then up to about one token in twenty that was never turned away gets in anyway (far fewer on average).
constexpr std::size_t kDoorkeeperMarks = kDoorkeeperBits / 8;
static_assert(sizeof(std::size_t) == 8, "the doorkeeper takes its two probes from the two halves of a 64-bit hash");
}  // namespace

TokenDigest digest_token(std::string_view token) noexcept {
  TokenDigest d;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d.bytes.data());
  return d;
}

std::size_t TokenCache::Hash::operator()(std::string_view token) const {
  const auto& key = util::process_hash_key();
  if (whole || token.size() <= kHeadSample + kTailSample) return util::siphash<1, 3>(key.k0, key.k1, token);
  char sample[kHeadSample + kTailSample];
  std::memcpy(sample, token.data(), kHeadSample);
  std::memcpy(sample + kHeadSample, token.data() + token.size() - kTailSample, kTailSample);
  // The length goes in through the second key word: tokens of other lengths with the same sample differ too.
  return util::siphash<1, 3>(key.k0, key.k1 ^ token.size(), std::string_view(sample, sizeof sample));
}

TokenCache::TokenCache(std::size_t max_entries, Hashing hashing)
    : max_entries_(max_entries), map_(0, Hash{hashing == Hashing::whole}) {}

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
  if (auto it = map_.find(token); it != map_.end()) {
    it->second = std::move(entry);
    return;
  }
  if (map_.size() >= max_entries_ && !make_room(map_.hash_function()(token), now)) return;
  map_.emplace(std::string(token), std::move(entry));
}

bool TokenCache::make_room(std::size_t newcomer, std::int64_t now) {
  // Candidates: the first entry of a bucket after a rotating cursor, for a few buckets (table order is unrelated
  // to age or client). They are looked at through bucket iterators; only the one chosen is looked up again.
  // A newcomer not seen lately only gets a dead entry's place, so fewer candidates are worth a look.
  const bool welcome = seen_lately(newcomer);
  const std::size_t candidates = welcome ? 8 : 2;
  const std::string* live = nullptr;
  const std::string* expired = nullptr;
  for (std::size_t looked = 0, steps = 0; looked < candidates && steps < 4 * candidates && !expired; ++steps) {
    evict_cursor_ = (evict_cursor_ + 1) % map_.bucket_count();
    auto local = map_.begin(evict_cursor_);
    if (local == map_.end(evict_cursor_)) continue;
    ++looked;
    if (now >= local->second.expires_at) expired = &local->first;
    else if (!live) live = &local->first;
  }
  const std::string* victim = expired;
  if (!victim) {
    if (!welcome) return false;
    victim = live;
  }
  map_.erase(victim ? map_.find(*victim) : map_.begin());
  return true;
}

bool TokenCache::seen_lately(std::size_t hash) {
  if (doorkeeper_.empty()) doorkeeper_.assign(kDoorkeeperBits / 64, 0);
  const std::size_t a = hash % kDoorkeeperBits, b = (hash >> 32) % kDoorkeeperBits;
  auto bit = [&](std::size_t i) -> bool { return doorkeeper_[i / 64] >> (i % 64) & 1; };
  if (bit(a) && bit(b)) return true;
  if (++doorkeeper_marks_ > kDoorkeeperMarks) {
    std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
    doorkeeper_marks_ = 1;
  }
  doorkeeper_[a / 64] |= std::uint64_t{1} << (a % 64);
  doorkeeper_[b / 64] |= std::uint64_t{1} << (b % 64);
  return false;
}

TokenCache& thread_token_cache(const std::shared_ptr<void>& owner, std::size_t max_entries,
                               TokenCache::Hashing hashing) {
  return util::per_thread<TokenCache>(owner, [&] { return std::make_unique<TokenCache>(max_entries, hashing); });
}

}  // namespace obsgw::auth
