#pragma once
// Who the client is when the gateway sits behind proxies it trusts (X-Forwarded-For).

#include <optional>
#include <string>

#include <asio/ip/address.hpp>

#include "obsgw/headers.hpp"
#include "obsgw/ip_set.hpp"

namespace obsgw::net {

struct ResolvedClient {
  asio::ip::address address;
  std::string forwarded_for;  // the chain from the client on, with the peer appended: what goes upstream
};

// When `peer` is a trusted proxy, walks the X-Forwarded-For addresses (all such fields, in order) from the right
// and takes the first one that is not trusted. When every address is trusted, the left-most is the client; an
// entry that is not an address ends the walk, and the trusted hop that reported it is the client (nothing to its
// left can be believed). Returns nullopt when the peer is not trusted or sent no X-Forwarded-For: the peer is the
// client and the client's X-Forwarded-For is ignored.
std::optional<ResolvedClient> resolve_client(const IpSet& trusted_proxies, const asio::ip::address& peer,
                                             const Headers& headers);

}  // namespace obsgw::net
