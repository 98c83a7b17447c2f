#pragma once

#include <cstddef>
#include <vector>

namespace obsgw::util {

// I/O buffers recycled within one io thread. A keep-alive client connection holds a buffer only while a request is
// in progress: between requests it gives the buffer back and waits for its next request in a small one of its own.
// A pooled upstream connection likewise holds none while idle. So ten thousand idle clients (or a thousand pooled
// upstream connections) do not hold a buffer each, and busy connections take and return buffers without malloc or
// zero-filling once the thread has a few spare.
//
// Every connection runs on one io thread for its whole life, so the spares are per thread and take no lock.
class SpareBuffers {
 public:
  static constexpr std::size_t kHeadSize = 8 * 1024;       // request heads and small bodies
  static constexpr std::size_t kResponseSize = 64 * 1024;  // an upstream connection's reads
  // Request bodies being streamed: big enough that a 100 KB push already waiting in the socket is read at once.
  static constexpr std::size_t kBodySize = 128 * 1024;

  // A buffer of `size` bytes (one of the sizes above): a spare one when the thread has one.
  static std::vector<char> take(std::size_t size);
  // Keeps `buf` for reuse when it has one of the sizes above and the thread's spares are not full; frees it
  // otherwise (a moved-from or empty buffer is simply dropped).
  static void give_back(std::vector<char>&& buf) noexcept;
};

}  // namespace obsgw::util
