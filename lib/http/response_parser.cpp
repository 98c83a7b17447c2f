#include "http/response_parser.hpp"

#include "http/char_classes.hpp"
#include "obsgw/headers.hpp"

namespace obsgw::http {

namespace {
HeadLimits response_limits(std::size_t max_head) {
  HeadLimits h;
  h.max_start_line = 8 * 1024;
  h.max_head_bytes = max_head;
  h.max_fields = 256;
  h.start_line_status = 502;
  h.head_status = 502;
  return h;
}
}  // namespace

ResponseParser::ResponseParser(std::size_t max_head_bytes) : scanner_(response_limits(max_head_bytes)) {}

void ResponseParser::reset() noexcept {
  scanner_.reset();
  error_ = {};
}

ResponseParser::State ResponseParser::parse(std::string_view data, std::string_view request_method,
                                            ResponseHead& out) {
  switch (scanner_.scan(data)) {
    case HeadScanner::State::incomplete:
      return State::incomplete;
    case HeadScanner::State::failed:
      error_ = {502, "bad_upstream_response", scanner_.error().message};
      return State::failed;
    case HeadScanner::State::complete:
      break;
  }
  std::string_view head = data.substr(scanner_.begin(), scanner_.end() - scanner_.begin() - 2);
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  out.clear();
  // HTTP/1.x SP 3DIGIT SP reason
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
    return fail("malformed status line");
  out.version_minor = line[7] - '0';
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail("malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100 || status > 599) return fail("status code out of range");
  if (line.size() > 12 && line[12] != ' ') return fail("malformed status line");
  std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view{};
  if (!is_field_value(reason)) return fail("control character in reason phrase");
  out.status = status;
  out.reason.assign(reason);

  std::string_view block = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
  int cl_count = 0, te_count = 0;
  std::string_view cl, te;
  bool conn_close = false, conn_keep_alive = false;
  while (!block.empty()) {
    std::size_t e = block.find("\r\n");
    std::string_view l = block.substr(0, e);
    block = e == std::string_view::npos ? std::string_view{} : block.substr(e + 2);
    if (l.front() == ' ' || l.front() == '\t') return fail("obsolete line folding");
    auto colon = l.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed header line");
    std::string_view name = l.substr(0, colon);
    if (!is_token(name)) return fail("invalid header name");
    std::string_view value = trim_ows(l.substr(colon + 1));
    if (!is_field_value(value)) return fail("control character in header value");
    if (iequals(name, "content-length")) {
      ++cl_count;
      cl = value;
    } else if (iequals(name, "transfer-encoding")) {
      ++te_count;
      te = value;
    } else if (iequals(name, "connection")) {
      for_each_list_item(value, [&](std::string_view t) {
        if (iequals(t, "close")) conn_close = true;
        else if (iequals(t, "keep-alive")) conn_keep_alive = true;
      });
    }
    out.headers.add(name, value);
  }
  out.keep_alive = out.version_minor == 1 ? !conn_close : (conn_keep_alive && !conn_close);

  if (status < 200 || status == 204 || status == 304 || request_method == "HEAD") {
    out.framing = BodyFraming::none;
    // A HEAD/304 response may carry the Content-Length of the representation: keep it for the client.
    if (cl_count == 1 && (request_method == "HEAD" || status == 304)) {
      std::uint64_t n = 0;
      bool ok = !cl.empty() && cl.size() <= 19;
      for (char c : cl) ok = ok && c >= '0' && c <= '9', n = n * 10 + static_cast<unsigned>(c - '0');
      if (ok) out.content_length = n;
    }
    return State::complete;
  }
  if (te_count > 1 || cl_count > 1) return fail("duplicate framing headers");
  if (te_count == 1) {
    std::string_view last;
    for_each_list_item(te, [&](std::string_view t) { last = t; });
    // A transfer coding other than chunked would reach the client undecoded: refuse it.
    if (!iequals(last, "chunked") || te.find(',') != std::string_view::npos)
      return fail("unsupported transfer coding");
    out.framing = BodyFraming::chunked;
    if (cl_count == 1) out.keep_alive = false;  // RFC 9112 6.3: TE wins, but the connection is suspect
    return State::complete;
  }
  if (cl_count == 1) {
    if (cl.empty() || cl.size() > 19) return fail("invalid Content-Length");
    std::uint64_t n = 0;
    for (char c : cl) {
      if (c < '0' || c > '9') return fail("invalid Content-Length");
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    out.content_length = n;
    out.framing = BodyFraming::content_length;
    return State::complete;
  }
  out.framing = BodyFraming::until_close;
  out.keep_alive = false;
  return State::complete;
}

}  // namespace obsgw::http
