#include "auth/challenge.hpp"

#include <string>

namespace obsgw::auth {

namespace {
// quoted-string content allowed in error_description (RFC 6750 3): printable ASCII without '"' and '\'.
std::string quotable(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') out.push_back(c);
  return out;
}
}  // namespace

Verdict unauthorized(std::string_view realm, Challenge kind, std::string_view code, std::string_view message,
                     bool basic_too) {
  std::string bearer = "Bearer realm=\"" + quotable(realm) + "\"";
  if (kind == Challenge::invalid_token)
    bearer += ", error=\"invalid_token\", error_description=\"" + quotable(message) + "\"";
  Verdict v = Verdict::reject(401, code, message);
  v.with_header("WWW-Authenticate", bearer);
  if (basic_too) v.with_header("WWW-Authenticate", "Basic realm=\"" + quotable(realm) + "\", charset=\"UTF-8\"");
  return v;
}

}  // namespace obsgw::auth
