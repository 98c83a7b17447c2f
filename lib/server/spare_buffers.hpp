#pragma once

#include <cstddef>
#include <vector>

namespace obsgw::detail {

// Request buffers recycled within one io thread. A keep-alive connection holds a full buffer only while a request is
// in progress: idle, it gives the buffer back and waits for its next request in a small one of its own. So ten
// thousand idle clients do not hold ten thousand 8 KB buffers, and busy connections take and return buffers without
// malloc or zero-filling once the thread has a few spare.
//
// Every connection runs on one io thread for its whole life, so the spares are per thread and take no lock.
class SpareBuffers {
 public:
  static constexpr std::size_t kHeadSize = 8 * 1024;   // for request heads and small bodies
  static constexpr std::size_t kBodySize = 64 * 1024;  // once a body is streamed

  // A buffer of `size` bytes (kHeadSize or kBodySize): a spare one when the thread has one.
  static std::vector<char> take(std::size_t size);
  // Keeps `buf` for reuse when it has one of the two sizes and the thread's spares are not full; frees it otherwise.
  static void give_back(std::vector<char>&& buf) noexcept;
};

}  // namespace obsgw::detail
