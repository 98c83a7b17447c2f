#include "util/spare_buffers.hpp"

#include <chrono>

namespace obsgw::util {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t kTrimCheckEvery = 256;  // give-backs between two clock reads

// Upper bounds of what one thread keeps (at most 32 + 64 + 64 MB, only ever after that many requests were in
// flight at once on the thread).
struct SizeClass {
  std::size_t size;
  std::size_t max_spare;
};
constexpr SizeClass kClasses[] = {{SpareBuffers::kHeadSize, 4096}, {SpareBuffers::kResponseSize, 1024},
                                  {SpareBuffers::kBodySize, 512}};
constexpr std::size_t kClassCount = sizeof kClasses / sizeof kClasses[0];

struct Spares {
  std::vector<IoBuffer> list;
  std::size_t low_water = 0;  // the fewest spares since the last trim: that many were never needed
};

struct ThreadSpares {
  Spares classes[kClassCount];
  std::size_t gives = 0;
  clock::time_point next_trim = clock::now() + SpareBuffers::kTrimInterval;

  void maybe_trim() noexcept {
    if (++gives % kTrimCheckEvery != 0) return;
    const auto now = clock::now();
    if (now >= next_trim) trim(now);
  }
  void trim(clock::time_point now) noexcept {
    next_trim = now + SpareBuffers::kTrimInterval;
    for (auto& c : classes) {
      c.list.resize(c.list.size() - c.low_water);
      c.low_water = c.list.size();
    }
  }
};

thread_local ThreadSpares t_spares;

int class_of(std::size_t size) {
  for (std::size_t i = 0; i < kClassCount; ++i)
    if (kClasses[i].size == size) return static_cast<int>(i);
  return -1;
}

}  // namespace

IoBuffer SpareBuffers::take(std::size_t size) {
  const int c = class_of(size);
  if (c < 0 || t_spares.classes[c].list.empty()) return IoBuffer(size);
  auto& spares = t_spares.classes[c];
  IoBuffer buf = std::move(spares.list.back());
  spares.list.pop_back();
  if (spares.list.size() < spares.low_water) spares.low_water = spares.list.size();
  return buf;
}

void SpareBuffers::give_back(IoBuffer&& buf) noexcept {
  IoBuffer mine = std::move(buf);  // freed at return unless kept
  const int c = class_of(mine.size());
  if (c < 0) return;
  auto& spares = t_spares.classes[c];
  if (spares.list.size() >= kClasses[c].max_spare) return;
  try {
    spares.list.push_back(std::move(mine));
  } catch (...) {  // no memory for the list's growth: the buffer is simply freed
  }
  t_spares.maybe_trim();
}

void SpareBuffers::trim() noexcept { t_spares.trim(clock::now()); }

std::size_t SpareBuffers::spare_count() noexcept {
  std::size_t n = 0;
  for (const auto& c : t_spares.classes) n += c.list.size();
  return n;
}

}  // namespace obsgw::util
