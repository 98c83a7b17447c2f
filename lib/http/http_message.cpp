#include "obsgw/http_message.hpp"

#include "http/char_classes.hpp"

namespace obsgw {

std::string RequestHead::host() const {
  std::string_view a = authority;
  if (!a.empty() && a.front() == '[') {
    a = a.substr(0, a.find(']') + 1);
  } else if (auto colon = a.rfind(':'); colon != std::string_view::npos) {
    a = a.substr(0, colon);
  }
  if (!a.empty() && a.back() == '.') a.remove_suffix(1);  // "example.com." is "example.com"
  std::string h(a);
  for (char& c : h) c = http::ascii_lower(c);
  return h;
}

void RequestHead::clear() noexcept {
  method.clear();
  path.clear();
  query.clear();
  authority.clear();
  version_minor = 1;
  headers.clear();
  framing = BodyFraming::none;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
  websocket_upgrade = false;
}

void ResponseHead::clear() noexcept {
  status = 200;
  reason.clear();
  version_minor = 1;
  headers.clear();
  framing = BodyFraming::none;
  content_length = 0;
  keep_alive = true;
}

std::string RequestHead::target() const {
  if (query.empty()) return path;
  std::string t;
  t.reserve(path.size() + 1 + query.size());
  t.append(path).append(1, '?').append(query);
  return t;
}

const char* reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace obsgw
