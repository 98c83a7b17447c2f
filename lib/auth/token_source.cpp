#include "obsgw/token_source.hpp"

#include <openssl/evp.h>

#include "http/char_classes.hpp"
#include "http/form_encoding.hpp"

namespace obsgw {

namespace {
using http::for_each_pair;
using http::percent_decode;
using http::trim_ows;

// `<scheme> <credentials>` from an Authorization value, when the scheme matches (case-insensitively).
std::optional<std::string_view> credentials(std::string_view value, std::string_view scheme) {
  value = trim_ows(value);
  if (value.size() < scheme.size() || !iequals(value.substr(0, scheme.size()), scheme)) return std::nullopt;
  std::string_view rest = value.substr(scheme.size());
  if (!rest.empty() && rest.front() != ' ') return std::nullopt;  // "Bearerx" is another scheme
  return trim_ows(rest);
}

// Standard base64 with padding (RFC 4648 section 4), as Basic credentials use it.
std::optional<std::string> base64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0 || in.size() > 16384) return std::nullopt;
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    bool pad = c == '=' && i >= in.size() - 2 && (i == in.size() - 1 || in[in.size() - 1] == '=');
    if (!alphabet && !pad) return std::nullopt;
  }
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t pads = (in.back() == '=') + (in.size() > 1 && in[in.size() - 2] == '=');
  out.resize(static_cast<std::size_t>(n) - pads);
  return out;
}

}  // namespace

std::optional<TokenSource> TokenSource::parse(std::string_view text) {
  auto colon = text.find(':');
  std::string_view kind = text.substr(0, colon);
  std::string name = colon == std::string_view::npos ? std::string() : std::string(text.substr(colon + 1));
  TokenSource s;
  s.name = name;
  if (kind == "bearer" || kind == "basic") {
    if (!name.empty()) return std::nullopt;
    s.kind = kind == "bearer" ? Kind::bearer : Kind::basic;
    return s;
  }
  if (name.empty()) return std::nullopt;
  if (kind == "header") s.kind = Kind::header;
  else if (kind == "cookie") s.kind = Kind::cookie;
  else if (kind == "query") s.kind = Kind::query;
  else return std::nullopt;
  return s;
}

namespace {
// Tokens are visible ASCII (RFC 6750's b64token is a subset). Anything else, which the decoded sources (basic,
// query) can produce, is refused: a CR or LF in a token would otherwise travel into a header of the gateway's
// own request to an introspection or userinfo endpoint.
std::optional<FoundToken> checked(FoundToken found) {
  for (char c : found.value())
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      found.raw = {};
      found.decoded.clear();
      break;
    }
  return found;
}
}  // namespace

std::optional<FoundToken> find_token(const RequestHead& request, const std::vector<TokenSource>& sources) {
  for (const auto& source : sources) {
    FoundToken found;
    found.source = &source;
    switch (source.kind) {
      case TokenSource::Kind::bearer:
      case TokenSource::Kind::basic: {
        auto auth = request.headers.get("authorization");
        if (!auth) break;
        auto creds = credentials(*auth, source.kind == TokenSource::Kind::bearer ? "Bearer" : "Basic");
        if (!creds) break;
        // Two Authorization fields are ambiguous: which one would the upstream read?
        if (request.headers.count("authorization") > 1) return checked(std::move(found));
        if (source.kind == TokenSource::Kind::bearer) {
          found.raw = *creds;  // a parsed header value: no control bytes, nothing to check
          return found;
        }
        found.is_decoded = true;
        if (auto decoded = base64_decode(*creds)) {
          auto colon = decoded->find(':');
          if (colon != std::string::npos) {
            found.user = decoded->substr(0, colon);
            found.decoded = decoded->substr(colon + 1);
          }
        }
        return checked(std::move(found));
      }
      case TokenSource::Kind::header: {
        auto value = request.headers.get(source.name);
        if (!value) break;
        if (request.headers.count(source.name) == 1) {
          std::string_view v = trim_ows(*value);
          if (auto bearer = credentials(v, "Bearer")) v = *bearer;  // tolerate a "Bearer " prefix
          found.raw = v;
        }
        return checked(std::move(found));
      }
      case TokenSource::Kind::cookie: {
        bool seen = false;
        for (const auto& h : request.headers) {
          if (!iequals(h.name, "cookie")) continue;
          for_each_pair(h.value, ';', [&](std::string_view name, std::string_view value, std::string_view) {
            if (name != source.name) return;
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
            found.raw = seen ? std::string_view() : value;  // the same cookie twice: refuse
            seen = true;
          });
        }
        if (seen) return checked(std::move(found));
        break;
      }
      case TokenSource::Kind::query: {
        bool seen = false;
        for_each_pair(request.query, '&', [&](std::string_view name, std::string_view value, std::string_view) {
          if (percent_decode(name) != source.name) return;
          found.is_decoded = true;
          found.decoded = seen ? std::string() : percent_decode(value);
          seen = true;
        });
        if (seen) return checked(std::move(found));
        break;
      }
    }
  }
  return std::nullopt;
}

void remove_token(RequestHead& request, const TokenSource& source) {
  switch (source.kind) {
    case TokenSource::Kind::bearer:
    case TokenSource::Kind::basic:
      request.headers.remove("authorization");
      break;
    case TokenSource::Kind::header:
      request.headers.remove(source.name);
      break;
    case TokenSource::Kind::cookie: {
      std::string kept;
      for (const auto& h : request.headers) {
        if (!iequals(h.name, "cookie")) continue;
        for_each_pair(h.value, ';', [&](std::string_view name, std::string_view, std::string_view pair) {
          if (name == source.name) return;
          if (!kept.empty()) kept += "; ";
          kept += trim_ows(pair);
        });
      }
      request.headers.remove("cookie");
      if (!kept.empty()) request.headers.add("Cookie", kept);
      break;
    }
    case TokenSource::Kind::query: {
      std::string kept;
      for_each_pair(request.query, '&', [&](std::string_view name, std::string_view, std::string_view pair) {
        if (percent_decode(name) == source.name) return;
        if (!kept.empty()) kept += '&';
        kept += pair;
      });
      request.query = std::move(kept);
      break;
    }
  }
}

}  // namespace obsgw
