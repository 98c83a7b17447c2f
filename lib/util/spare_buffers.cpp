#include "util/spare_buffers.hpp"

#include <utility>

namespace obsgw::util {

namespace {

// What one thread keeps at most: 2 MB of head buffers, 4 MB of response buffers, 4 MB of body buffers.
struct SizeClass {
  std::size_t size;
  std::size_t max_spare;
};
constexpr SizeClass kClasses[] = {{SpareBuffers::kHeadSize, 256}, {SpareBuffers::kResponseSize, 64},
                                  {SpareBuffers::kBodySize, 32}};
constexpr std::size_t kClassCount = sizeof kClasses / sizeof kClasses[0];

thread_local std::vector<std::vector<char>> t_spares[kClassCount];

int class_of(std::size_t size) {
  for (std::size_t i = 0; i < kClassCount; ++i)
    if (kClasses[i].size == size) return static_cast<int>(i);
  return -1;
}

}  // namespace

std::vector<char> SpareBuffers::take(std::size_t size) {
  const int c = class_of(size);
  if (c < 0 || t_spares[c].empty()) return std::vector<char>(size);
  std::vector<char> buf = std::move(t_spares[c].back());
  t_spares[c].pop_back();
  return buf;
}

void SpareBuffers::give_back(std::vector<char>&& buf) noexcept {
  std::vector<char> mine = std::move(buf);  // freed at return unless kept
  const int c = class_of(mine.size());
  if (c < 0 || t_spares[c].size() >= kClasses[c].max_spare) return;
  try {
    t_spares[c].push_back(std::move(mine));
  } catch (...) {  // no memory for the list's growth: the buffer is simply freed
  }
}

}  // namespace obsgw::util
