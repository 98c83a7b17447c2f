#pragma once
// Removal of hop-by-hop headers (RFC 9110 7.6.1): they describe one connection and must not cross the proxy.

#include "obsgw/headers.hpp"

namespace obsgw::proxy {

// Removes Connection and every header it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Proxy-*,
// Content-Length (the proxy frames the message itself), Expect and, unless `keep_upgrade`, Upgrade.
void remove_hop_by_hop(Headers& headers, bool keep_upgrade);

}  // namespace obsgw::proxy
