#include "util/spare_pool.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace obsgw::util {
namespace {

TEST(SparePool, TakeFromAnEmptyPoolLeavesTheTargetAlone) {
  SparePool<std::unique_ptr<int>> pool(4);
  auto target = std::make_unique<int>(7);
  EXPECT_FALSE(pool.take(target));
  ASSERT_TRUE(target);
  EXPECT_EQ(*target, 7);
}

TEST(SparePool, KeepsAtMostItsBoundAndHandsBackTheLastGiven) {
  SparePool<std::unique_ptr<int>> pool(2);
  for (int i = 0; i < 5; ++i) pool.give_back(std::make_unique<int>(i));
  EXPECT_EQ(pool.size(), 2u);  // the three beyond the bound were freed
  std::unique_ptr<int> out;
  ASSERT_TRUE(pool.take(out));
  EXPECT_EQ(*out, 1);  // the two kept were the first given; the last kept comes out first
  ASSERT_TRUE(pool.take(out));
  EXPECT_EQ(*out, 0);
  EXPECT_FALSE(pool.take(out));
}

TEST(SparePool, TrimFreesWhatNoTakeNeededSinceThePreviousTrim) {
  SparePool<std::unique_ptr<int>> pool(16);
  for (int i = 0; i < 6; ++i) pool.give_back(std::make_unique<int>(i));
  pool.trim();  // given since the (implicit) previous round: all kept
  EXPECT_EQ(pool.size(), 6u);
  std::unique_ptr<int> a, b;
  ASSERT_TRUE(pool.take(a));
  ASSERT_TRUE(pool.take(b));  // two in use at once: four were never needed
  pool.give_back(std::move(a));
  pool.give_back(std::move(b));
  pool.trim();
  EXPECT_EQ(pool.size(), 2u);
  pool.trim();  // nothing taken since
  EXPECT_EQ(pool.size(), 0u);
}

}  // namespace
}  // namespace obsgw::util
