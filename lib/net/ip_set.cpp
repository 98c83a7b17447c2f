#include "obsgw/ip_set.hpp"

#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace obsgw {

namespace {

asio::ip::address unmapped(const asio::ip::address& a) noexcept {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

std::array<std::uint64_t, 2> halves(const asio::ip::address_v6& a) noexcept {
  auto b = a.to_bytes();
  std::array<std::uint64_t, 2> out{};
  for (int i = 0; i < 16; ++i) out[static_cast<std::size_t>(i / 8)] = (out[static_cast<std::size_t>(i / 8)] << 8) | b[static_cast<std::size_t>(i)];
  return out;
}

std::array<std::uint64_t, 2> mask6(unsigned bits) noexcept {
  std::array<std::uint64_t, 2> m{};
  for (unsigned half = 0; half < 2; ++half) {
    unsigned b = bits > 64 * half ? std::min(64u, bits - 64 * half) : 0;
    m[half] = b == 0 ? 0 : (b == 64 ? ~0ull : ~((1ull << (64 - b)) - 1));
  }
  return m;
}

// "192.168.*" → 192.168.0.0/16; only whole trailing octets may be wildcards.
std::optional<std::string> wildcard_to_cidr(std::string_view entry, std::string& out) {
  if (entry == "*") {
    out = "*";
    return std::nullopt;
  }
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto dot = entry.find('.', start);
    parts.push_back(entry.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() > 4) return "has more than four octets";
  unsigned fixed = 0;
  bool wild = false;
  std::string base;
  for (auto part : parts) {
    if (part == "*") {
      wild = true;
      continue;
    }
    if (wild) return "a wildcard may only stand for whole trailing octets (\"10.1.*\", not \"10.*.1\")";
    unsigned v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || p != part.data() + part.size() || v > 255) return fmt::format("\"{}\" is not an octet", part);
    base += (base.empty() ? "" : ".") + std::string(part);
    ++fixed;
  }
  for (unsigned i = fixed; i < 4; ++i) base += (base.empty() ? "0" : ".0");
  out = fmt::format("{}/{}", base, fixed * 8);
  return std::nullopt;
}

}  // namespace

std::optional<std::string> IpSet::add(std::string_view entry) {
  std::string text(entry);
  if (entry.find('%') != std::string_view::npos) return "has an interface zone (%...): give the address alone";
  if (entry.find('*') != std::string_view::npos) {
    if (entry.find(':') != std::string_view::npos) return "wildcards are for IPv4; write IPv6 networks as CIDR (2001:db8::/32)";
    if (auto err = wildcard_to_cidr(entry, text)) return err;
    if (text == "*") {
      v4_.push_back({0, 0});
      v6_.push_back({{0, 0}, {0, 0}});
      return std::nullopt;
    }
  }
  std::string_view addr_text = text;
  std::optional<unsigned> bits;
  if (auto slash = addr_text.find('/'); slash != std::string_view::npos) {
    auto len = addr_text.substr(slash + 1);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (len.empty() || ec != std::errc() || p != len.data() + len.size()) return "the prefix length after '/' is not a number";
    bits = v;
    addr_text = addr_text.substr(0, slash);
  }
  std::error_code ec;
  auto addr = asio::ip::make_address(std::string(addr_text), ec);
  if (ec) return "is not an IP address, CIDR network or IPv4 wildcard";
  addr = unmapped(addr);
  if (addr.is_v4()) {
    unsigned b = bits.value_or(32);
    if (b > 32) return "an IPv4 prefix length is at most 32";
    std::uint32_t m = b == 0 ? 0u : (b == 32 ? ~0u : ~((1u << (32 - b)) - 1));
    std::uint32_t base = addr.to_v4().to_uint();
    if (base & ~m) return fmt::format("has host bits set below the /{} prefix (did you mean {}/{}?)", b,
                                      asio::ip::make_address_v4(base & m).to_string(), b);
    v4_.push_back({base, m});
  } else {
    unsigned b = bits.value_or(128);
    if (b > 128) return "an IPv6 prefix length is at most 128";
    auto m = mask6(b);
    auto base = halves(addr.to_v6());
    if ((base[0] & ~m[0]) || (base[1] & ~m[1])) return fmt::format("has host bits set below the /{} prefix", b);
    v6_.push_back({base, m});
  }
  return std::nullopt;
}

IpSet IpSet::from(const std::vector<std::string>& entries) {
  IpSet s;
  for (const auto& e : entries)
    if (auto err = s.add(e)) throw std::invalid_argument(fmt::format("\"{}\" {}", e, *err));
  return s;
}

bool IpSet::contains(const asio::ip::address& address) const noexcept {
  auto a = unmapped(address);
  if (a.is_v4()) {
    std::uint32_t v = a.to_v4().to_uint();
    for (const auto& n : v4_)
      if ((v & n.mask) == n.base) return true;
    return false;
  }
  auto h = halves(a.to_v6());
  for (const auto& n : v6_)
    if ((h[0] & n.mask[0]) == n.base[0] && (h[1] & n.mask[1]) == n.base[1]) return true;
  return false;
}

// ":port" after an address: 1 to 65535, digits only.
static bool valid_port_suffix(std::string_view s) {
  if (s.size() < 2 || s.size() > 6 || s.front() != ':') return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && v >= 1 && v <= 65535;
}

std::optional<asio::ip::address> parse_client_address(std::string_view text) noexcept {
  try {
    // A zone ("fe80::1%eth0") names an interface of the sender's host: meaningless here, and a way to mint
    // endless distinct keys for one address.
    if (text.empty() || text.size() > 64 || text.find('%') != std::string_view::npos) return std::nullopt;
    std::string_view host = text;
    if (host.front() == '[') {
      auto close = host.find(']');
      if (close == std::string_view::npos) return std::nullopt;
      auto rest = host.substr(close + 1);
      if (!rest.empty() && !valid_port_suffix(rest)) return std::nullopt;
      host = host.substr(1, close - 1);
    } else if (auto colon = host.find(':'); colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
      if (!valid_port_suffix(host.substr(colon))) return std::nullopt;
      host = host.substr(0, colon);  // a.b.c.d:port
    }
    std::error_code ec;
    auto addr = asio::ip::make_address(std::string(host), ec);
    if (ec) return std::nullopt;
    return unmapped(addr);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace obsgw
