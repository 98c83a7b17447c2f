#include "util/spare_buffers.hpp"

#include "util/spare_pool.hpp"

namespace obsgw::util {

namespace {

// Upper bounds of what one thread keeps (at most 32 + 64 + 64 MB, only ever after that many requests were in
// flight at once on the thread).
struct SizeClass {
  std::size_t size;
  std::size_t max_spare;
};
constexpr SizeClass kClasses[] = {{SpareBuffers::kHeadSize, 4096}, {SpareBuffers::kResponseSize, 1024},
                                  {SpareBuffers::kBodySize, 512}};
constexpr std::size_t kClassCount = sizeof kClasses / sizeof kClasses[0];

struct ThreadSpares {
  SparePool<IoBuffer> classes[kClassCount] = {SparePool<IoBuffer>(kClasses[0].max_spare),
                                              SparePool<IoBuffer>(kClasses[1].max_spare),
                                              SparePool<IoBuffer>(kClasses[2].max_spare)};
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
  IoBuffer buf;
  if (c < 0 || !t_spares.classes[c].take(buf)) return IoBuffer(size);
  return buf;
}

void SpareBuffers::give_back(IoBuffer&& buf) noexcept {
  IoBuffer mine = std::move(buf);  // freed at return unless kept
  const int c = class_of(mine.size());
  if (c >= 0) t_spares.classes[c].give_back(std::move(mine));
}

void SpareBuffers::trim() noexcept {
  for (auto& c : t_spares.classes) c.trim();
}

std::size_t SpareBuffers::spare_count() noexcept {
  std::size_t n = 0;
  for (const auto& c : t_spares.classes) n += c.size();
  return n;
}

}  // namespace obsgw::util
