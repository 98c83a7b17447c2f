#include "util/spare_buffers.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace obsgw::util {
namespace {

TEST(SpareBuffers, AGivenBackBufferIsTakenAgainOnTheSameThread) {
  std::thread([] {  // a fresh thread: its spares start empty
    IoBuffer a = SpareBuffers::take(SpareBuffers::kHeadSize);
    ASSERT_EQ(a.size(), SpareBuffers::kHeadSize);
    const char* where = a.data();
    SpareBuffers::give_back(std::move(a));
    EXPECT_EQ(SpareBuffers::spare_count(), 1u);
    IoBuffer b = SpareBuffers::take(SpareBuffers::kHeadSize);
    EXPECT_EQ(b.data(), where);  // recycled, not allocated
    EXPECT_EQ(SpareBuffers::spare_count(), 0u);
    // Each size has its own spares: a head buffer is never handed out for a body.
    SpareBuffers::give_back(std::move(b));
    IoBuffer body = SpareBuffers::take(SpareBuffers::kBodySize);
    EXPECT_EQ(body.size(), SpareBuffers::kBodySize);
    EXPECT_NE(body.data(), where);
    EXPECT_EQ(SpareBuffers::spare_count(), 1u);
  }).join();
}

TEST(SpareBuffers, OddSizesAndEmptyBuffersAreNotKept) {
  std::thread([] {
    IoBuffer grown = SpareBuffers::take(SpareBuffers::kHeadSize);
    grown.resize(3 * SpareBuffers::kHeadSize);  // a long request head made it grow
    SpareBuffers::give_back(std::move(grown));
    SpareBuffers::give_back(IoBuffer{});
    EXPECT_EQ(SpareBuffers::spare_count(), 0u);
  }).join();
}

TEST(SpareBuffers, SparesArePerThread) {
  std::thread([] { SpareBuffers::give_back(SpareBuffers::take(SpareBuffers::kResponseSize)); }).join();
  std::thread([] { EXPECT_EQ(SpareBuffers::spare_count(), 0u); }).join();
}

}  // namespace
}  // namespace obsgw::util
