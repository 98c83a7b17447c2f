#include "server/spare_buffers.hpp"

#include <utility>

namespace obsgw::detail {

namespace {

// Bounds on what one thread keeps: 2 MB of head buffers and 2 MB of body buffers at most.
constexpr std::size_t kMaxSpareHeads = 256;
constexpr std::size_t kMaxSpareBodies = 32;

struct Spares {
  std::vector<std::vector<char>> heads;
  std::vector<std::vector<char>> bodies;
};
thread_local Spares t_spares;

}  // namespace

std::vector<char> SpareBuffers::take(std::size_t size) {
  auto* list = size == kHeadSize ? &t_spares.heads : size == kBodySize ? &t_spares.bodies : nullptr;
  if (!list || list->empty()) return std::vector<char>(size);
  std::vector<char> buf = std::move(list->back());
  list->pop_back();
  return buf;
}

void SpareBuffers::give_back(std::vector<char>&& buf) noexcept {
  std::vector<char> mine = std::move(buf);  // freed at return unless kept
  auto keep = [&](std::vector<std::vector<char>>& list, std::size_t max) noexcept {
    if (list.size() >= max) return;
    try {
      list.push_back(std::move(mine));
    } catch (...) {  // no memory for the list's growth: the buffer is simply freed
    }
  };
  if (mine.size() == kHeadSize) keep(t_spares.heads, kMaxSpareHeads);
  else if (mine.size() == kBodySize) keep(t_spares.bodies, kMaxSpareBodies);
}

}  // namespace obsgw::detail
