// Address sets (allow/deny lists, trusted proxies) and who the client is behind trusted proxies.

#include "obsgw/ip_set.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "net/client_address.hpp"
#include "obsgw/ip_rules.hpp"

namespace obsgw {
namespace {

asio::ip::address a(const char* s) { return asio::ip::make_address(s); }

TEST(IpSet, AddressesNetworksAndWildcards) {
  auto s = IpSet::from({"10.0.0.0/8", "192.168.*", "203.0.113.7", "2001:db8::/32", "::1"});
  for (const char* in : {"10.1.2.3", "10.255.255.255", "192.168.0.1", "192.168.255.9", "203.0.113.7", "2001:db8:1::5", "::1",
                         "::ffff:10.9.9.9"})
    EXPECT_TRUE(s.contains(a(in))) << in;
  for (const char* out : {"11.0.0.1", "192.169.0.1", "203.0.113.8", "2001:db9::1", "::2", "::ffff:11.0.0.1", "0.0.0.0"})
    EXPECT_FALSE(s.contains(a(out))) << out;
}

TEST(IpSet, EdgesOfPrefixes) {
  auto s = IpSet::from({"0.0.0.0/0"});
  EXPECT_TRUE(s.contains(a("255.255.255.255")));
  EXPECT_FALSE(s.contains(a("::1")));  // an IPv4 network says nothing about IPv6
  auto all = IpSet::from({"*"});
  EXPECT_TRUE(all.contains(a("1.2.3.4")));
  EXPECT_TRUE(all.contains(a("fe80::1")));
  auto v6 = IpSet::from({"2001:db8:0:0:8000::/65"});
  EXPECT_TRUE(v6.contains(a("2001:db8::8000:0:0:1")));
  EXPECT_FALSE(v6.contains(a("2001:db8::7fff:0:0:1")));
  auto host = IpSet::from({"2001:db8::1/128", "1.2.3.4/32"});
  EXPECT_TRUE(host.contains(a("2001:db8::1")));
  EXPECT_FALSE(host.contains(a("2001:db8::2")));
  EXPECT_TRUE(host.contains(a("1.2.3.4")));
  EXPECT_TRUE(IpSet().empty());
  EXPECT_FALSE(IpSet().contains(a("1.2.3.4")));
}

TEST(IpSet, MalformedEntriesAreExplained) {
  IpSet s;
  EXPECT_THAT(s.add("10.*.1"), testing::Optional(testing::HasSubstr("whole trailing octets")));
  EXPECT_THAT(s.add("10.0.0.1/8"), testing::Optional(testing::HasSubstr("did you mean 10.0.0.0/8")));
  EXPECT_THAT(s.add("10.0.0.0/33"), testing::Optional(testing::HasSubstr("at most 32")));
  EXPECT_THAT(s.add("::/129"), testing::Optional(testing::HasSubstr("at most 128")));
  EXPECT_THAT(s.add("2001:db8::*"), testing::Optional(testing::HasSubstr("CIDR")));
  EXPECT_THAT(s.add("example.com"), testing::Optional(testing::HasSubstr("not an IP address")));
  EXPECT_THAT(s.add("300.1.*"), testing::Optional(testing::HasSubstr("not an octet")));
  EXPECT_THAT(s.add("1.2.3.4.*"), testing::Optional(testing::HasSubstr("more than four")));
  EXPECT_THAT(s.add("10.0.0.0/x"), testing::Optional(testing::HasSubstr("prefix length")));
  EXPECT_TRUE(s.empty());
  EXPECT_THROW(IpSet::from({"1.2.3.4", "nope"}), std::invalid_argument);
}

TEST(ClientAddressParse, FormsSeenInForwardedFor) {
  EXPECT_EQ(parse_client_address("1.2.3.4")->to_string(), "1.2.3.4");
  EXPECT_EQ(parse_client_address("1.2.3.4:5678")->to_string(), "1.2.3.4");
  EXPECT_EQ(parse_client_address("[2001:db8::1]:443")->to_string(), "2001:db8::1");
  EXPECT_EQ(parse_client_address("2001:db8::1")->to_string(), "2001:db8::1");
  EXPECT_EQ(parse_client_address("::ffff:1.2.3.4")->to_string(), "1.2.3.4");
  for (const char* bad : {"", "unknown", "_hidden", "1.2.3", "[::1", "[::1]x", "1.2.3.4:80:90", "a b", "1.2.3.4:99999",
                          "1.2.3.4:abc", "1.2.3.4:", "[::1]:0", "fe80::1%eth0", "[fe80::1%25eth0]:80"})
    EXPECT_FALSE(parse_client_address(bad)) << bad;
}

struct Resolved {
  std::string client;
  std::string forwarded;
};

std::optional<Resolved> resolve(const IpSet& trusted, const char* peer, std::vector<std::string> xff) {
  Headers h;
  for (const auto& v : xff) h.add("X-Forwarded-For", v);
  auto r = net::resolve_client(trusted, a(peer), h);
  if (!r) return std::nullopt;
  return Resolved{r->address.to_string(), r->forwarded_for};
}

TEST(TrustedProxies, RightMostUntrustedAddressIsTheClient) {
  auto trusted = IpSet::from({"10.0.0.0/8", "fd00::/8"});
  // An untrusted peer's claims are ignored altogether.
  EXPECT_FALSE(resolve(trusted, "198.51.100.1", {"1.1.1.1"}));
  // A trusted peer without the header: the peer is the client.
  EXPECT_FALSE(resolve(trusted, "10.0.0.1", {}));
  auto r = resolve(trusted, "10.0.0.1", {"6.6.6.6, 203.0.113.5, 10.0.0.2"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client, "203.0.113.5");
  EXPECT_EQ(r->forwarded, "203.0.113.5, 10.0.0.2, 10.0.0.1");  // the spoofable part left of the client is dropped
  // Several header fields form one list, in order.
  r = resolve(trusted, "10.0.0.1", {"6.6.6.6", "2001:db8::9, fd00::5"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client, "2001:db8::9");
  EXPECT_EQ(r->forwarded, "2001:db8::9, fd00::5, 10.0.0.1");
  // Every hop trusted: the left-most is the client.
  r = resolve(trusted, "10.0.0.1", {"10.0.0.3, 10.0.0.2"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client, "10.0.0.3");
  // Garbage ends the walk: the trusted hop that reported it is the client.
  r = resolve(trusted, "10.0.0.1", {"1.1.1.1, evil\r, 10.0.0.2"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client, "10.0.0.2");
  EXPECT_EQ(r->forwarded, "10.0.0.2, 10.0.0.1");
  r = resolve(trusted, "10.0.0.1", {"unknown"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client, "10.0.0.1");
  // Ports and brackets are normalised away.
  r = resolve(trusted, "::ffff:10.0.0.1", {"[2001:db8::7]:1234, 203.0.113.9:80"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->client, "203.0.113.9");
  EXPECT_EQ(r->forwarded, "203.0.113.9, 10.0.0.1");
}

TEST(IpRules, DenyWinsOverAllow) {
  IpRulesOptions o;
  o.allow = IpSet::from({"10.0.0.0/8"});
  o.deny = IpSet::from({"10.6.6.0/24"});
  auto p = make_ip_rules(o);
  EXPECT_EQ(p->phase(), Phase::admit);
  auto check = [&](const char* peer) {
    ConnectionInfo c;
    c.peer_address = a(peer);
    Exchange ex(RequestHead{}, c);
    auto v = p->on_request(ex);
    return v.rejects() ? v.rejection().code : std::string("proceed");
  };
  EXPECT_EQ(check("10.1.1.1"), "proceed");
  EXPECT_EQ(check("10.6.6.6"), "ip_denied");
  EXPECT_EQ(check("11.1.1.1"), "ip_not_allowed");
  EXPECT_EQ(check("::ffff:10.1.1.1"), "proceed");
}

}  // namespace
}  // namespace obsgw
