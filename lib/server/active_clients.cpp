#include "server/active_clients.hpp"

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>

#include "net/watchdog.hpp"
#include "server/metrics.hpp"

namespace obsgw::detail {

namespace {

constexpr unsigned kPrecision = 10;
constexpr std::size_t kRegisters = std::size_t{1} << kPrecision;
constexpr std::int64_t kMinutes = 5;
constexpr std::size_t kSlots = kMinutes + 1;  // the minute being written plus the five before it

struct Sketch {
  std::atomic<std::int64_t> minute{-1};
  std::array<std::atomic<std::uint8_t>, kRegisters> registers{};
};
// Written only by the io thread owning the shard; read (relaxed) by /stats. Untouched shards stay unmapped zero pages.
struct alignas(64) ShardSketches {
  std::array<Sketch, kSlots> slots;
};
std::array<ShardSketches, kShards> g_sketches;

std::int64_t minute_now() noexcept {
  return std::chrono::duration_cast<std::chrono::minutes>(net::coarse_now().time_since_epoch()).count();
}

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finaliser: addresses are far from uniform
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

void note_client(const asio::ip::address& address) noexcept {
  std::uint64_t h;
  if (address.is_v4()) {
    h = mix(address.to_v4().to_uint());
  } else {
    auto b = address.to_v6().to_bytes();
    std::uint64_t a, c;
    std::memcpy(&a, b.data(), 8);
    std::memcpy(&c, b.data() + 8, 8);
    h = mix(a ^ mix(c));
  }
  const std::int64_t minute = minute_now();
  Sketch& s = g_sketches[shard_index()].slots[static_cast<std::size_t>(minute % static_cast<std::int64_t>(kSlots))];
  if (s.minute.load(std::memory_order_relaxed) != minute) {
    for (auto& r : s.registers) r.store(0, std::memory_order_relaxed);
    s.minute.store(minute, std::memory_order_relaxed);
  }
  const std::size_t index = h >> (64 - kPrecision);
  const auto rank = static_cast<std::uint8_t>(std::countl_zero((h << kPrecision) | (std::uint64_t{1} << (kPrecision - 1))) + 1);
  if (s.registers[index].load(std::memory_order_relaxed) < rank) s.registers[index].store(rank, std::memory_order_relaxed);
}

std::uint64_t estimate_active_clients() noexcept {
  const std::int64_t now = minute_now();
  std::array<std::uint8_t, kRegisters> merged{};
  for (const auto& shard : g_sketches)
    for (const auto& s : shard.slots) {
      std::int64_t m = s.minute.load(std::memory_order_relaxed);
      if (m < 0 || m < now - (kMinutes - 1) || m > now) continue;
      for (std::size_t i = 0; i < kRegisters; ++i)
        merged[i] = std::max(merged[i], s.registers[i].load(std::memory_order_relaxed));
    }
  double sum = 0;
  std::size_t zeros = 0;
  for (auto r : merged) {
    sum += std::ldexp(1.0, -static_cast<int>(r));
    zeros += r == 0;
  }
  const double m = static_cast<double>(kRegisters);
  const double alpha = 0.7213 / (1 + 1.079 / m);
  double estimate = alpha * m * m / sum;
  if (estimate <= 2.5 * m && zeros > 0) estimate = m * std::log(m / static_cast<double>(zeros));  // small counts
  return static_cast<std::uint64_t>(std::llround(estimate));
}

}  // namespace obsgw::detail
