#include "util/spare_buffers.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

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

// A trim frees the spares that no request needed since the previous trim: after a burst and then silence, two
// rounds of the io thread's timer give everything back; spares that were used meanwhile stay.
TEST(SpareBuffers, TrimFreesWhatStayedUnusedSinceThePreviousTrim) {
  std::thread([] {
    std::vector<IoBuffer> burst;
    for (int i = 0; i < 10; ++i) burst.push_back(SpareBuffers::take(SpareBuffers::kBodySize));
    for (auto& b : burst) SpareBuffers::give_back(std::move(b));
    ASSERT_EQ(SpareBuffers::spare_count(), 10u);
    SpareBuffers::trim();  // all ten served the burst since the (implicit) previous round: kept
    EXPECT_EQ(SpareBuffers::spare_count(), 10u);
    // Three in use at once since then: seven were never needed.
    std::vector<IoBuffer> busy;
    for (int i = 0; i < 3; ++i) busy.push_back(SpareBuffers::take(SpareBuffers::kBodySize));
    for (auto& b : busy) SpareBuffers::give_back(std::move(b));
    SpareBuffers::trim();
    EXPECT_EQ(SpareBuffers::spare_count(), 3u);
    SpareBuffers::trim();  // silence since: nothing is kept
    EXPECT_EQ(SpareBuffers::spare_count(), 0u);
  }).join();
}

TEST(SpareBuffers, SparesArePerThread) {
  std::thread([] { SpareBuffers::give_back(SpareBuffers::take(SpareBuffers::kResponseSize)); }).join();
  std::thread([] { EXPECT_EQ(SpareBuffers::spare_count(), 0u); }).join();
}

}  // namespace
}  // namespace obsgw::util
