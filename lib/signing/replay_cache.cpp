#include "signing/replay_cache.hpp"

#include <algorithm>
#include <functional>

namespace obsgw::signing {

ReplayCache::Use ReplayCache::first_use(std::string_view signature, std::int64_t now, std::int64_t expires) {
  // The signature is an HMAC: its bits are already uniform, and forging a collision needs the secret.
  const std::uint64_t h = std::hash<std::string_view>{}(signature);
  Shard& s = shards_[(h >> 11) % kShards];
  std::lock_guard lock(s.mutex);
  if (auto it = s.expiry.find(h); it != s.expiry.end()) {
    if (it->second >= now) return Use::replay;
    it->second = expires;
    return Use::first;
  }
  if (s.expiry.size() >= s.sweep_at) {
    std::erase_if(s.expiry, [now](const auto& e) { return e.second < now; });
    // Sweep again only after the shard has grown by half: a shard full of live entries must not sweep per insert.
    s.sweep_at = std::max<std::size_t>(1024, s.expiry.size() + s.expiry.size() / 2);
  }
  if (s.expiry.size() >= max_per_shard_) return Use::full;
  s.expiry.emplace(h, expires);
  return Use::first;
}

}  // namespace obsgw::signing
