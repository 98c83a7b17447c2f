#pragma once
// application/x-www-form-urlencoded, as query strings, OAuth 2.0 requests and Cookie headers (the pair walk) use
// it.

#include <optional>
#include <string>
#include <string_view>

#include "http/char_classes.hpp"

namespace obsgw::http {

// %XX sequences and '+' (a space) decoded; a malformed % is kept as it is.
std::string percent_decode(std::string_view s);
// Everything but unreserved characters (RFC 3986 2.3) as %XX.
std::string form_encode(std::string_view s);

// Calls f(name, value, whole_pair) for each `name=value` in a `sep`-separated list (names and values not decoded,
// surrounding whitespace trimmed).
template <class F>
void for_each_pair(std::string_view list, char sep, F f) {
  while (!list.empty()) {
    auto end = list.find(sep);
    std::string_view pair = list.substr(0, end);
    list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
    std::string_view trimmed = trim_ows(pair);
    auto eq = trimmed.find('=');
    f(trimmed.substr(0, eq), eq == std::string_view::npos ? std::string_view{} : trimmed.substr(eq + 1), pair);
  }
}

// The decoded value of the first parameter `name` in a query string; nullopt when absent. `repeated` (when not
// null) tells whether the name occurs more than once.
std::optional<std::string> query_value(std::string_view query, std::string_view name, bool* repeated = nullptr);

// `Basic <base64(form(id):form(secret))>`: an OAuth 2.0 client's credentials in an Authorization header
// (RFC 6749 2.3.1).
std::string client_basic_authorization(std::string_view client_id, std::string_view client_secret);

}  // namespace obsgw::http
