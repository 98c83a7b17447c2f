#include "http/form_encoding.hpp"

#include <openssl/evp.h>

#include <cctype>

namespace obsgw::http {

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

std::string form_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::optional<std::string> query_value(std::string_view query, std::string_view name, bool* repeated) {
  std::optional<std::string> found;
  if (repeated) *repeated = false;
  for_each_pair(query, '&', [&](std::string_view n, std::string_view v, std::string_view) {
    if (percent_decode(n) != name) return;
    if (found && repeated) *repeated = true;
    if (!found) found = percent_decode(v);
  });
  return found;
}

std::string client_basic_authorization(std::string_view client_id, std::string_view client_secret) {
  const std::string creds = form_encode(client_id) + ":" + form_encode(client_secret);
  std::string out(4 * ((creds.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(creds.data()),
                          static_cast<int>(creds.size()));
  out.resize(static_cast<std::size_t>(n));
  return "Basic " + out;
}

}  // namespace obsgw::http
