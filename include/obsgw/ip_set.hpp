#pragma once
/// @file
/// A set of IP addresses and networks, for allow/deny lists and trusted proxies.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

namespace obsgw {

class IpSet {
 public:
  /// Adds one entry. Accepted forms:
  ///   "10.1.2.3", "::1"                   a single address
  ///   "10.0.0.0/8", "2001:db8::/32"       CIDR (host bits must be zero)
  ///   "192.168.*", "10.*.*.*", "*"        IPv4 with trailing wildcard octets ("*" alone: every address)
  /// Returns an explanation when the entry is malformed, nullopt when it was added.
  std::optional<std::string> add(std::string_view entry);

  /// Builds a set from entries; throws std::invalid_argument naming the first bad entry.
  static IpSet from(const std::vector<std::string>& entries);

  /// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 entries.
  bool contains(const asio::ip::address& address) const noexcept;
  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }

 private:
  struct Net4 {
    std::uint32_t base;
    std::uint32_t mask;
  };
  struct Net6 {
    std::array<std::uint64_t, 2> base;
    std::array<std::uint64_t, 2> mask;
  };
  std::vector<Net4> v4_;
  std::vector<Net6> v6_;
};

/// Parses an address as a client may send it in X-Forwarded-For ("1.2.3.4", "1.2.3.4:5678", "[::1]:80", "::1").
/// IPv4-mapped IPv6 becomes IPv4. nullopt for anything else ("unknown", obfuscated identifiers, garbage).
std::optional<asio::ip::address> parse_client_address(std::string_view text) noexcept;

}  // namespace obsgw
