#include "obsgw/identity_headers.hpp"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "http/char_classes.hpp"
#include "proxy/hop_by_hop.hpp"

namespace obsgw {

namespace {
// Claims come from the identity provider, not the client, but a value that cannot be a header field must not
// make the forwarder refuse the request: control characters are dropped.
std::string field_safe(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 0x20 && u != 0x7f) || c == '\t') out.push_back(c);
  }
  return out;
}

void set_if(Headers& h, const std::string& name, std::string_view value) {
  if (name.empty() || value.empty()) return;
  bool clean = true;
  for (char c : value) clean = clean && (static_cast<unsigned char>(c) >= 0x20 || c == '\t') && c != 0x7f;
  if (clean) h.set(name, value);  // the common case: no copy
  else h.set(name, field_safe(value));
}
}  // namespace

void IdentityHeaders::strip(Headers& headers) const {
  std::array<std::string_view, 5> names;
  std::size_t n = 0;
  for (const auto* header : {&subject, &email, &groups, &client_id, &name})
    if (!header->empty()) names[n++] = *header;
  headers.remove_all(std::span(names.data(), n));
}

void IdentityHeaders::apply(const Identity& identity, Headers& headers) const {
  set_if(headers, subject, identity.subject);
  set_if(headers, email, identity.email);
  set_if(headers, client_id, identity.client_id);
  set_if(headers, name, identity.name);
  if (!groups.empty() && !identity.groups.empty()) {
    std::string joined;
    // The list is comma-separated: a group whose name has a comma would read as two groups, so it is left out.
    for (const auto& g : identity.groups)
      if (g.find(',') == std::string::npos) joined += (joined.empty() ? "" : ",") + g;
    set_if(headers, groups, joined);
  }
}

std::vector<std::string> identity_header_names(const IdentityHeaders& h) {
  std::vector<std::string> out;
  for (const auto* name : {&h.subject, &h.email, &h.groups, &h.client_id, &h.name})
    if (!name->empty()) out.push_back(*name);
  return out;
}

void IdentityHeaders::validate() const {
  for (const auto* header : {&subject, &email, &groups, &client_id, &name}) {
    if (header->empty()) continue;
    if (!http::is_token(*header)) throw std::invalid_argument(fmt::format("\"{}\" is not a valid header name", *header));
    if (proxy::is_proxy_managed(*header) || proxy::is_credential_header(*header))
      throw std::invalid_argument(fmt::format("header \"{}\" cannot carry the identity", *header));
  }
}

}  // namespace obsgw
