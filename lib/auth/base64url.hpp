#pragma once
// Strict base64url (RFC 4648 section 5) without padding, as JWS uses it (RFC 7515 section 2).

#include <optional>
#include <string>
#include <string_view>

namespace obsgw::auth {

// Decodes unpadded base64url. Refuses padding, characters outside the alphabet, a length of 1 mod 4, and
// non-canonical encodings (unused trailing bits set), so that one token has exactly one spelling.
std::optional<std::string> base64url_decode(std::string_view in);
std::string base64url_encode(std::string_view in);

}  // namespace obsgw::auth
