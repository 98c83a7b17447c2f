#include "obsgw/headers.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "http/request_parser.hpp"
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

TEST(Headers, RemoveAllTakesEveryNamedFieldInOnePass) {
  Headers h;
  for (auto [n, v] : {std::pair{"A", "1"}, {"b", "2"}, {"X-Keep", "3"}, {"a", "4"}, {"C", "5"}, {"B", "6"}}) h.add(n, v);
  constexpr std::array<std::string_view, 3> names = {"a", "B", "missing"};
  EXPECT_EQ(h.remove_all(names), 4u);
  std::vector<std::string> left;
  for (const auto& f : h) left.push_back(std::string(f.name) + "=" + std::string(f.value));
  EXPECT_EQ(left, (std::vector<std::string>{"X-Keep=3", "C=5"}));
  EXPECT_EQ(h.remove_all(names), 0u);
  EXPECT_EQ(h.remove_all({}), 0u);
  h.add("x-new", "7");  // still usable after removals
  EXPECT_EQ(h.get("X-NEW"), "7");
}

// The forwarder re-validates only fields the parser did not: a mark must stay with its own field through the edits
// policies make to others, and must never cover a value written after parsing.
TEST(Headers, TrustMarksStayWithTheirFieldsAndNeverCoverNewValues) {
  http::RequestParser parser(HttpLimits{});
  RequestHead head;
  ASSERT_EQ(parser.parse("GET / HTTP/1.1\r\nHost: a\r\nX-Scope-OrgID: t1\r\nAuthorization: Bearer token\r\n\r\n", head),
            http::RequestParser::State::complete);
  Headers& h = head.headers;
  auto untrusted = [&] {
    std::vector<std::string> seen;
    h.untrusted_all_of([&](const HeaderView& f) {
      seen.push_back(std::string(f.name) + "=" + std::string(f.value));
      return true;
    });
    return seen;
  };
  EXPECT_TRUE(untrusted().empty());
  h.remove("x-scope-orgid");  // before the token: the token keeps its mark
  h.add("X-Scope-OrgID", "t2");
  h.set("Host", "b");  // replaced in place: the new value is not covered
  EXPECT_EQ(untrusted(), (std::vector<std::string>{"Host=b", "X-Scope-OrgID=t2"}));
  // A value copied from a marked field is a new field: not covered either (store() copies views into itself).
  h.set("Host", *h.get("Authorization"));
  EXPECT_EQ(untrusted(), (std::vector<std::string>{"Host=Bearer token", "X-Scope-OrgID=t2"}));
  // A stop at the first failure, and an answer that says so.
  EXPECT_FALSE(h.untrusted_all_of([](const HeaderView& f) { return f.name != "X-Scope-OrgID"; }));
  EXPECT_TRUE(h.untrusted_all_of([](const HeaderView& f) { return f.name != "Authorization"; }));
  h.clear();
  h.add("Authorization", "x");
  EXPECT_EQ(untrusted(), (std::vector<std::string>{"Authorization=x"}));  // a reused list starts unmarked
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

TEST(HopByHop, EveryNameOfLongAndRepeatedConnectionListsGoes) {
  Headers h;
  h.add("Connection", "x-a, x-b,, x-c");  // more names than are kept off the heap, over two fields
  h.add("X-Kept", "yes");
  h.add("connection", " X-D ,x-e,x-f");
  for (const char* n : {"X-A", "X-B", "X-C", "X-D", "X-E", "X-F"}) h.add(n, "v");
  proxy::remove_hop_by_hop(h, false);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(h.contains("x-kept"));
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
  RequestHead head;
  head.headers.add("X-Drop", "1");
  head.headers.add("X-Set", "old");
  head.headers.add("x-set", "old2");
  Exchange ex(std::move(head), ConnectionInfo{});
  ASSERT_TRUE(HeaderTransform(e, {}).on_request(ex).proceeds());
  const Headers& h = ex.request().headers;
  EXPECT_FALSE(h.contains("x-drop"));
  EXPECT_EQ(h.count("x-set"), 2u);
  EXPECT_EQ(*h.get("x-set"), "new");
  EXPECT_EQ(*h.get("x-add"), "a");
}

TEST(HeaderTransform, TemplatesExpandFromTheExchange) {
  HeaderEdits e;
  e.set = {{"X-Tenant", "${tenant}"}, {"X-Who", "${subject} via ${client_id}"}, {"X-Plan", "${claim.org.plan}"},
           {"X-Groups", "${claim.groups}"}, {"X-Trace", "${request_id}@${region}/${route}"}, {"X-Client", "${client_ip}"},
           {"X-Missing", "${email}"}, {"X-Literal", "cost: $5 {not a var}"}, {"X-Evil", "${claim.evil}"}};
  e.add = {{"X-Maybe", "${claim.absent}"}};
  RequestHead head;
  head.headers.add("X-Missing", "client-sent");
  head.headers.add("X-Evil", "client-sent");
  ConnectionInfo c;
  c.peer_address = asio::ip::make_address("192.0.2.4");
  Exchange ex(std::move(head), c);
  ex.set_request_id("req-1");
  ex.set_region("eu-west");
  ex.tenants = {"acme", "globex"};
  auto id = std::make_shared<Identity>();
  id->method = "jwt";
  id->subject = "agent";
  id->client_id = "cid";
  id->claims_json = R"({"org":{"plan":"gold"},"groups":["a","b"],"evil":"x\r\nInjected: 1"})";
  ex.identity = id;
  ASSERT_TRUE(HeaderTransform(e, {}).on_request(ex).proceeds());
  const Headers& h = ex.request().headers;
  EXPECT_EQ(h.get("X-Tenant"), "acme|globex");
  EXPECT_EQ(h.get("X-Who"), "agent via cid");
  EXPECT_EQ(h.get("X-Plan"), "gold");
  EXPECT_EQ(h.get("X-Groups"), "a,b");
  EXPECT_EQ(h.get("X-Trace"), "req-1@eu-west/");
  EXPECT_EQ(h.get("X-Client"), "192.0.2.4");
  EXPECT_EQ(h.get("X-Literal"), "cost: $5 {not a var}");
  EXPECT_FALSE(h.contains("X-Missing"));  // expands to nothing: the client's copy is removed, not kept
  EXPECT_FALSE(h.contains("X-Evil"));     // would inject a line break: dropped
  EXPECT_FALSE(h.contains("X-Maybe"));

  HeaderEdits unknown;
  unknown.set = {{"X", "${tenants}"}};
  EXPECT_THROW(HeaderTransform(unknown, {}), std::invalid_argument);
  HeaderEdits unclosed;
  unclosed.set = {{"X", "${tenant"}};
  EXPECT_THROW(HeaderTransform(unclosed, {}), std::invalid_argument);
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
