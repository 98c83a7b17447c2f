#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "util/spare_pool.hpp"

namespace obsgw::util {

// An allocator whose value-initialisation is default-initialisation: growing an I/O buffer does not zero-fill it,
// since every byte is written by a read before anything looks at it.
template <class T, class Base = std::allocator<T>>
class NoZeroFill : public Base {
  using traits = std::allocator_traits<Base>;

 public:
  template <class U>
  struct rebind {
    using other = NoZeroFill<U, typename traits::template rebind_alloc<U>>;
  };
  using Base::Base;
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    traits::construct(static_cast<Base&>(*this), p, std::forward<Args>(args)...);
  }
};

using IoBuffer = std::vector<char, NoZeroFill<char>>;

// I/O buffers recycled within one io thread. A keep-alive client connection holds a buffer only while a request is
// in progress: between requests it gives the buffer back and waits for its next request in a small one of its own.
// A pooled upstream connection likewise holds none while idle. So ten thousand idle clients (or a thousand pooled
// upstream connections) do not hold a buffer each, while busy connections take and return buffers without malloc.
//
// The spares follow the load (util::SparePool, one per size): a thread keeps as many as its peak of requests in
// flight needed, up to a bound per size, and frees those that stayed unused for kTrimInterval.
//
// Every connection runs on one io thread for its whole life, so the spares are per thread and take no lock.
class SpareBuffers {
 public:
  static constexpr std::size_t kHeadSize = 8 * 1024;       // request heads and small bodies
  static constexpr std::size_t kResponseSize = 64 * 1024;  // an upstream connection's reads
  // Request bodies being streamed: big enough that a 100 KB push already waiting in the socket is read at once.
  static constexpr std::size_t kBodySize = 128 * 1024;

  // A buffer of `size` bytes (one of the sizes above): a spare one when the thread has one.
  static IoBuffer take(std::size_t size);
  // Keeps `buf` for reuse when it has one of the sizes above and the thread's spares are not at their bound; frees
  // it otherwise (a moved-from or empty buffer is simply dropped).
  static void give_back(IoBuffer&& buf) noexcept;
  // Frees this thread's spares that stayed unused since the previous trim (by this call or by give_back's own
  // check). Called every kTrimInterval on each io thread.
  static void trim() noexcept;
  static constexpr std::chrono::seconds kTrimInterval = SparePool<IoBuffer>::kTrimInterval;
  // Spare buffers this thread holds now, of all sizes (for tests).
  static std::size_t spare_count() noexcept;
};

}  // namespace obsgw::util
