#pragma once
// Removal of hop-by-hop headers (RFC 9110 7.6.1): they describe one connection and must not cross the proxy.

#include "obsgw/headers.hpp"

namespace obsgw::proxy {

// Removes Connection and every header it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Proxy-*,
// Content-Length (the proxy frames the message itself), Expect and, unless `keep_upgrade`, Upgrade.
void remove_hop_by_hop(Headers& headers, bool keep_upgrade);

// Headers that frame the message or the connection (Content-Length, Transfer-Encoding, Connection, Host,
// Upgrade, TE, Trailer, Keep-Alive, Proxy-*): only the proxy writes them. Configured header edits, identity
// headers and forward-auth answers must not name them.
bool is_proxy_managed(std::string_view name) noexcept;

// Headers that carry the client's credentials (Authorization, Cookie, Proxy-Authorization): a policy must not
// overwrite them with identity data or copy them into a forward-auth answer.
bool is_credential_header(std::string_view name) noexcept;

}  // namespace obsgw::proxy
