#pragma once
// Signatures seen recently, so that a captured signed request cannot be sent again within its time window.
// Shared by the io threads (sharded under short locks); entries expire with the window; bounded.

#include <array>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace obsgw::signing {

class ReplayCache {
 public:
  explicit ReplayCache(std::size_t max_entries = 1'000'000) : max_per_shard_(max_entries / kShards + 1) {}

  enum class Use : unsigned char {
    first,   // recorded now
    replay,  // seen before and not expired
    full,    // the shard is full of live signatures: refuse rather than forget one (forgetting allows a replay)
  };
  // Records `signature` as seen until `expires` (Unix seconds).
  Use first_use(std::string_view signature, std::int64_t now, std::int64_t expires);

 private:
  static constexpr std::size_t kShards = 32;
  struct alignas(64) Shard {
    std::mutex mutex;
    std::unordered_map<std::uint64_t, std::int64_t> expiry;  // 64 bits of the signature's own hash → expiry
    std::size_t sweep_at = 1024;
  };
  std::array<Shard, kShards> shards_;
  std::size_t max_per_shard_;
};

}  // namespace obsgw::signing
