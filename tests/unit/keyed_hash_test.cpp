// The keyed hash for client-chosen table keys: SipHash-2-4 against the reference vectors of its paper (the same
// code runs 1-3 in the tables), and a key that differs per process.

#include "util/keyed_hash.hpp"

#include <gtest/gtest.h>

#include <string>

namespace obsgw::util {
namespace {

std::uint64_t reference(std::size_t length) {
  // Key 00 01 .. 0f, message 00 01 .. (length-1), as in the SipHash paper's appendix and reference code.
  std::uint64_t k0 = 0, k1 = 0;
  for (int i = 7; i >= 0; --i) k0 = (k0 << 8) | static_cast<std::uint64_t>(i);
  for (int i = 15; i >= 8; --i) k1 = (k1 << 8) | static_cast<std::uint64_t>(i);
  std::string msg;
  for (std::size_t i = 0; i < length; ++i) msg.push_back(static_cast<char>(i));
  return siphash<2, 4>(k0, k1, msg);
}

TEST(KeyedHash, SipHash24ReferenceVectors) {
  EXPECT_EQ(reference(0), 0x726fdb47dd0e0e31ull);
  EXPECT_EQ(reference(1), 0x74f839c593dc67fdull);
  EXPECT_EQ(reference(7), 0xab0200f58b01d137ull);
  EXPECT_EQ(reference(8), 0x93f5f5799a932462ull);
  EXPECT_EQ(reference(15), 0xa129ca6149be45e5ull);  // the paper's worked example
  EXPECT_EQ(reference(63), 0x958a324ceb064572ull);
}

TEST(KeyedHash, TableHashUsesTheProcessKey) {
  KeyedStringHash h;
  EXPECT_EQ(h("bucket\x1fkey"), h(std::string("bucket\x1fkey")));
  EXPECT_NE(h("bucket\x1fkey"), h("bucket\x1fkez"));
  const HashKey& k = process_hash_key();
  EXPECT_FALSE(k.k0 == 0 && k.k1 == 0);
  EXPECT_EQ(h("x"), static_cast<std::size_t>(siphash<1, 3>(k.k0, k.k1, "x")));
}

}  // namespace
}  // namespace obsgw::util
