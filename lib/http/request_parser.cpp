#include "http/request_parser.hpp"

#include <string>

#include "http/char_classes.hpp"
#include "obsgw/headers.hpp"

namespace obsgw::http {

namespace {

HeadLimits head_limits(const HttpLimits& l) {
  HeadLimits h;
  h.max_start_line = l.max_request_line;
  h.max_head_bytes = l.max_header_bytes;
  h.max_fields = l.max_header_count;
  return h;
}

bool is_dot_segment(std::string_view seg, bool& two) {
  // ".", "..", and their percent-encoded spellings ("%2e", ".%2E", ...)
  std::size_t dots = 0;
  while (!seg.empty()) {
    if (seg[0] == '.') {
      seg.remove_prefix(1);
    } else if (seg.size() >= 3 && seg[0] == '%' && seg[1] == '2' && (seg[2] == 'e' || seg[2] == 'E')) {
      seg.remove_prefix(3);
    } else {
      return false;
    }
    if (++dots > 2) return false;
  }
  two = dots == 2;
  return dots > 0;
}

}  // namespace

bool normalize_path(std::string& path) {
  if (path.find('.') == std::string::npos && path.find("%2") == std::string::npos) return true;
  std::string out;
  out.reserve(path.size());
  std::size_t i = 1;  // path[0] == '/'
  bool trailing_slash = false;
  while (i <= path.size()) {
    std::size_t slash = path.find('/', i);
    if (slash == std::string::npos) slash = path.size();
    std::string_view seg(path.data() + i, slash - i);
    bool two = false;
    if (is_dot_segment(seg, two)) {
      if (two) {
        if (out.empty()) return false;  // above the root
        out.resize(out.rfind('/'));
      }
      trailing_slash = true;
    } else {
      out += '/';
      out.append(seg);
      trailing_slash = false;
    }
    i = slash + 1;
  }
  if (out.empty() || trailing_slash) out += '/';
  path = std::move(out);
  return true;
}

const char* canonicalize_path(std::string& path) {
  if (path.find_first_of("%;.") == std::string::npos && path.find("//") == std::string::npos) return nullptr;
  std::string out;
  out.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {  // the target was validated: two hex digits follow
      char decoded = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      if (decoded == '/' || decoded == '\\' || decoded == '\0') return "encoded '/', '\\' or NUL in the path";
      bool unreserved = (decoded >= 'a' && decoded <= 'z') || (decoded >= 'A' && decoded <= 'Z') ||
                        (decoded >= '0' && decoded <= '9') || decoded == '-' || decoded == '.' || decoded == '_' ||
                        decoded == '~';
      if (unreserved) {
        out.push_back(decoded);
      } else {
        out.append(path, i, 3);
      }
      i += 2;
    } else if (c == '/' && !out.empty() && out.back() == '/') {
      continue;  // merge slashes
    } else {
      out.push_back(c);
    }
  }
  // A dot segment with parameters ("..;x", ".;x") is a traversal to servers that strip the parameters.
  for (std::size_t seg = 0; seg < out.size();) {
    std::size_t end = out.find('/', seg + 1);
    if (end == std::string::npos) end = out.size();
    std::string_view s(out.data() + seg + 1, end - seg - 1);
    if (!s.empty() && s.front() == '.' && s.find(';') != std::string_view::npos) return "dot segment with parameters in the path";
    seg = end;
  }
  if (!normalize_path(out)) return "path climbs above the root";
  path = std::move(out);
  return nullptr;
}

bool is_valid_authority(std::string_view a) noexcept {
  if (a.empty()) return false;
  std::string_view host = a;
  std::string_view port;
  if (a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : a.substr(1, close - 1))
      if (!(is_hex_digit(c) || c == ':' || c == '.')) return false;
    host = a.substr(0, close + 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    auto colon = a.rfind(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (host.empty()) return false;
    for (char c : host)
      if (!is_host_char(c) || c == ':') return false;
  }
  if (port.size() > 5) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return true;
}

RequestParser::RequestParser(const HttpLimits& limits) : limits_(limits), scanner_(head_limits(limits)) {}

void RequestParser::reset() noexcept {
  scanner_.reset();
  error_ = {};
}

RequestParser::State RequestParser::parse(std::string_view data, RequestHead& out) {
  switch (scanner_.scan(data)) {
    case HeadScanner::State::incomplete:
      return State::incomplete;
    case HeadScanner::State::failed:
      error_ = scanner_.error();
      return State::failed;
    case HeadScanner::State::complete:
      break;
  }
  std::string_view head = data.substr(scanner_.begin(), scanner_.end() - scanner_.begin() - 2);
  std::size_t eol = head.find("\r\n");
  out.clear();
  if (auto s = parse_request_line(head.substr(0, eol), out); s != State::complete) return s;
  if (auto s = parse_fields(head.substr(eol + 2), out); s != State::complete) return s;
  return apply_semantics(out);
}

RequestParser::State RequestParser::parse_request_line(std::string_view line, RequestHead& out) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return fail(400, "bad_request_line", "malformed request line");
  std::string_view method = line.substr(0, sp1);
  if (!is_token(method) || method.size() > 32) return fail(400, "bad_method", "invalid method");
  auto sp2 = line.rfind(' ');
  if (sp2 == sp1) return fail(400, "bad_request_line", "malformed request line");
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty() || target.find(' ') != std::string_view::npos)
    return fail(400, "bad_request_line", "malformed request line");
  std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "bad_version", "invalid HTTP version");
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
    return fail(505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported");
  out.version_minor = version[7] - '0';
  out.method.assign(method);
  if (method == "CONNECT") return fail(405, "method_not_allowed", "CONNECT is not supported");
  return parse_target(target, method, out);
}

RequestParser::State RequestParser::parse_target(std::string_view target, std::string_view method,
                                                 RequestHead& out) {
  for (std::size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (!is_target_char(c)) return fail(400, "bad_target", "request target contains a character that is not allowed");
    if (c == '%' && (i + 2 >= target.size() || !is_hex_digit(target[i + 1]) || !is_hex_digit(target[i + 2])))
      return fail(400, "bad_target", "invalid percent-encoding in request target");
  }
  if (target == "*") {
    if (method != "OPTIONS") return fail(400, "bad_target", "asterisk target is only valid with OPTIONS");
    out.path = "*";
    return State::complete;
  }
  std::string_view rest = target;
  if (target.front() != '/') {
    // absolute-form
    std::size_t scheme_len = 0;
    if (target.size() > 7 && iequals(target.substr(0, 7), "http://")) scheme_len = 7;
    else if (target.size() > 8 && iequals(target.substr(0, 8), "https://")) scheme_len = 8;
    else return fail(400, "bad_target", "request target must be origin-form or an http(s) absolute URI");
    rest = target.substr(scheme_len);
    auto path_start = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, path_start);
    if (authority.find('@') != std::string_view::npos || !is_valid_authority(authority))
      return fail(400, "bad_target", "invalid authority in absolute-form target");
    out.authority.assign(authority);
    rest = path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
  }
  auto q = rest.find('?');
  out.path.assign(rest.substr(0, q));
  if (out.path.empty()) out.path = "/";
  if (out.path.front() != '/') return fail(400, "bad_target", "path must start with '/'");
  if (q != std::string_view::npos) out.query.assign(rest.substr(q + 1));
  if (const char* why = canonicalize_path(out.path)) return fail(400, "bad_target", why);
  return State::complete;
}

RequestParser::State RequestParser::parse_fields(std::string_view block, RequestHead& out) {
  while (!block.empty()) {
    std::size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{} : block.substr(eol + 2);
    if (line.front() == ' ' || line.front() == '\t')
      return fail(400, "obs_fold", "obsolete line folding is not accepted");
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400, "bad_header", "header line without a colon");
    std::string_view name = line.substr(0, colon);
    if (name.empty()) return fail(400, "bad_header", "empty header name");
    if (name.back() == ' ' || name.back() == '\t')
      return fail(400, "bad_header", "whitespace between header name and colon");
    if (!is_token(name)) return fail(400, "bad_header", "invalid character in header name");
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!is_field_value(value)) {  // 16 bytes at a time for the common case; the reason found byte by byte
      for (char c : value)
        if (c == '\r') return fail(400, "bare_cr", "CR inside a header line");
      return fail(400, "bad_header", "control character in header value");
    }
    out.headers.add(name, value);
  }
  out.headers.mark_trusted();
  return State::complete;
}

RequestParser::State RequestParser::apply_semantics(RequestHead& out) {
  std::string_view host, content_length, transfer_encoding;
  int host_count = 0, cl_count = 0, te_count = 0;
  bool conn_close = false, conn_keep_alive = false, conn_upgrade = false;
  std::string_view upgrade, expect;
  for (const auto& f : out.headers) {
    std::string_view n = f.name;
    if (iequals(n, "host")) {
      ++host_count;
      host = f.value;
    } else if (iequals(n, "content-length")) {
      ++cl_count;
      content_length = f.value;
    } else if (iequals(n, "transfer-encoding")) {
      ++te_count;
      transfer_encoding = f.value;
    } else if (iequals(n, "connection")) {
      for_each_list_item(f.value, [&](std::string_view t) {
        if (iequals(t, "close")) conn_close = true;
        else if (iequals(t, "keep-alive")) conn_keep_alive = true;
        else if (iequals(t, "upgrade")) conn_upgrade = true;
      });
    } else if (iequals(n, "upgrade")) {
      upgrade = f.value;
    } else if (iequals(n, "expect")) {
      expect = f.value;
    }
  }

  if (host_count > 1) return fail(400, "bad_host", "more than one Host header");
  if (host_count == 1 && !is_valid_authority(host)) return fail(400, "bad_host", "invalid Host header");
  if (out.version_minor == 1 && host_count == 0) return fail(400, "bad_host", "HTTP/1.1 request without Host header");
  if (out.authority.empty()) out.authority.assign(host);  // absolute-form wins over Host (RFC 9112 3.2.2)

  if (cl_count > 0 && te_count > 0)
    return fail(400, "ambiguous_framing", "both Content-Length and Transfer-Encoding present");
  if (cl_count > 1) return fail(400, "ambiguous_framing", "more than one Content-Length header");
  if (te_count > 1) return fail(400, "ambiguous_framing", "more than one Transfer-Encoding header");
  if (te_count == 1) {
    if (out.version_minor == 0) return fail(400, "ambiguous_framing", "Transfer-Encoding in an HTTP/1.0 request");
    std::string_view last;
    std::size_t codings = 0;
    for_each_list_item(transfer_encoding, [&](std::string_view t) {
      last = t;
      ++codings;
    });
    if (!iequals(last, "chunked"))
      return fail(400, "ambiguous_framing", "Transfer-Encoding must end with chunked");
    if (codings != 1) return fail(501, "unsupported_transfer_coding", "only Transfer-Encoding: chunked is supported");
    out.framing = BodyFraming::chunked;
  } else if (cl_count == 1) {
    if (content_length.empty() || content_length.size() > 19)
      return fail(400, "bad_content_length", "invalid Content-Length");
    std::uint64_t n = 0;
    for (char c : content_length) {
      if (c < '0' || c > '9') return fail(400, "bad_content_length", "invalid Content-Length");
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    out.content_length = n;
    out.framing = n > 0 ? BodyFraming::content_length : BodyFraming::none;
  }
  if (out.framing == BodyFraming::content_length && out.content_length > limits_.max_body_bytes)
    return fail(413, "body_too_large", "request body exceeds the configured limit");

  out.keep_alive = out.version_minor == 1 ? !conn_close : (conn_keep_alive && !conn_close);
  if (!expect.empty() && out.version_minor == 1) {
    if (!iequals(expect, "100-continue")) return fail(417, "expectation_failed", "only Expect: 100-continue is supported");
    out.expect_continue = true;
  }
  if (conn_upgrade && !upgrade.empty()) {
    std::string_view first;
    for_each_list_item(upgrade, [&](std::string_view t) {
      if (first.empty()) first = t;
    });
    out.websocket_upgrade = iequals(first, "websocket") && out.version_minor == 1 && out.method == "GET";
  }
  return State::complete;
}

}  // namespace obsgw::http
