#include "obsgw/headers.hpp"

#include <gtest/gtest.h>

#include "obsgw/header_transform.hpp"
#include "proxy/hop_by_hop.hpp"

namespace obsgw {
namespace {

TEST(Headers, CaseInsensitiveLookupKeepsOrderAndDuplicates) {
  Headers h;
  h.add("X-A", "1");
  h.add("x-a", "2");
  h.add("B", "3");
  EXPECT_EQ(*h.get("X-a"), "1");
  EXPECT_EQ(h.count("X-A"), 2u);
  h.set("x-A", "9");
  EXPECT_EQ(h.count("X-A"), 1u);
  EXPECT_EQ(*h.get("x-a"), "9");
  EXPECT_EQ((*h.begin()).value, "9");  // set replaces in the position of the first
  EXPECT_EQ(h.remove("b"), 1u);
  EXPECT_FALSE(h.contains("B"));
}

TEST(HopByHop, RemovesConnectionAndNamedHeaders) {
  Headers h;
  h.add("Connection", "keep-alive, X-Secret");
  h.add("Keep-Alive", "timeout=5");
  h.add("X-Secret", "s");
  h.add("TE", "trailers");
  h.add("Trailer", "X");
  h.add("Proxy-Authorization", "Basic x");
  h.add("Proxy-Connection", "keep-alive");
  h.add("Upgrade", "websocket");
  h.add("Transfer-Encoding", "chunked");
  h.add("Content-Length", "5");
  h.add("X-Kept", "yes");
  h.add("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  proxy::remove_hop_by_hop(h, false);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.contains("x-kept"));
  EXPECT_TRUE(h.contains("traceparent"));
}

TEST(HopByHop, KeepsUpgradeForWebSockets) {
  Headers h;
  h.add("Connection", "Upgrade");
  h.add("Upgrade", "websocket");
  h.add("Sec-WebSocket-Key", "k");
  proxy::remove_hop_by_hop(h, true);
  EXPECT_TRUE(h.contains("upgrade"));
  EXPECT_TRUE(h.contains("sec-websocket-key"));
  EXPECT_FALSE(h.contains("connection"));
}

TEST(HeaderTransform, AppliesRemoveThenSetThenAdd) {
  HeaderEdits e;
  e.remove = {"X-Drop"};
  e.set = {{"X-Set", "new"}};
  e.add = {{"X-Add", "a"}, {"X-Set", "second"}};
  Headers h;
  h.add("X-Drop", "1");
  h.add("X-Set", "old");
  h.add("x-set", "old2");
  e.apply(h);
  EXPECT_FALSE(h.contains("x-drop"));
  EXPECT_EQ(h.count("x-set"), 2u);
  EXPECT_EQ(*h.get("x-set"), "new");
  EXPECT_EQ(*h.get("x-add"), "a");
}

TEST(HeaderTransform, RefusesProxyManagedAndInvalidHeaders) {
  HeaderEdits bad_name;
  bad_name.set = {{"Bad Name", "x"}};
  EXPECT_THROW(HeaderTransform(bad_name, {}), std::invalid_argument);
  HeaderEdits framing;
  framing.set = {{"Content-Length", "1"}};
  EXPECT_THROW(HeaderTransform(framing, {}), std::invalid_argument);
  HeaderEdits injection;
  injection.add = {{"X", "a\r\nInjected: 1"}};
  EXPECT_THROW(HeaderTransform({}, injection), std::invalid_argument);
}

}  // namespace
}  // namespace obsgw
