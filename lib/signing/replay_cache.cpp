#include "signing/replay_cache.hpp"

#include <algorithm>
#include <functional>

namespace obsgw::signing {

bool ReplayCache::first_use(std::string_view signature, std::int64_t now, std::int64_t expires) {
  // The signature is an HMAC: its bits are already uniform, and forging a collision needs the secret.
  const std::uint64_t h = std::hash<std::string_view>{}(signature);
  Shard& s = shards_[(h >> 11) % kShards];
  std::lock_guard lock(s.mutex);
  auto [it, fresh] = s.expiry.try_emplace(h, expires);
  if (!fresh) {
    if (it->second >= now) return false;
    it->second = expires;
    return true;
  }
  if (s.expiry.size() >= s.sweep_at) {
    std::erase_if(s.expiry, [now](const auto& e) { return e.second < now; });
    // At the cap the oldest-looking entries go: a flood of valid signatures cannot grow memory without bound.
    while (s.expiry.size() >= max_per_shard_) s.expiry.erase(s.expiry.begin());
    s.sweep_at = std::max<std::size_t>(1024, std::min(max_per_shard_, s.expiry.size() * 2));
  }
  return true;
}

}  // namespace obsgw::signing
