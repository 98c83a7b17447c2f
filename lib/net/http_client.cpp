#include "net/http_client.hpp"

#include <charconv>
#include <stdexcept>

#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include "http/chunked_decoder.hpp"
#include "http/response_parser.hpp"
#include "net/watchdog.hpp"
#include "obsgw/transport.hpp"
#include "proxy/upstream_url.hpp"

namespace obsgw::net {

namespace {
using tcp = asio::ip::tcp;

std::string tls_error_text(const std::error_code& ec) {
  std::string text = ec.message();
  return text.empty() ? "handshake failed" : text;
}
}  // namespace

HttpClient::HttpClient(const std::string& ca_file)
    : tls_(std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client)) {
  SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
  std::error_code ec;
  if (!ca_file.empty()) {
    tls_->load_verify_file(ca_file, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot load CA file \"{}\": {}", ca_file, ec.message()));
  } else {
    tls_->set_default_verify_paths(ec);
  }
}

namespace {
// Bytes that would let a value end its header line (or the request line) early: request smuggling towards the
// identity provider if a client's token carried them into a header.
bool has_line_breaks(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos; }
}  // namespace

asio::awaitable<HttpClientResponse> HttpClient::fetch(const HttpClientRequest& request, std::string& error) const {
  HttpClientResponse response;
  error.clear();
  bool injectable = has_line_breaks(request.method) || has_line_breaks(request.url);
  for (const auto& h : request.headers) injectable = injectable || has_line_breaks(h.name) || has_line_breaks(h.value);
  if (injectable) {
    error = "refused to send a request with a line break in its method, URL or a header";
    co_return response;
  }
  std::string url = request.url, query;
  if (auto q = url.find('?'); q != std::string::npos) {
    query = url.substr(q);
    url.resize(q);
  }
  auto parsed = proxy::parse_upstream_url(url, error);
  if (!parsed) {
    error = fmt::format("URL \"{}\" {}", request.url, error);
    co_return response;
  }
  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  auto executor = co_await asio::this_coro::executor;
  std::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  if (auto addr = asio::ip::make_address(parsed->host, ec); !ec) {
    endpoints.emplace_back(addr, parsed->port);
  } else {
    // getaddrinfo runs on Asio's resolver thread and cannot be interrupted; the system resolver's own timeouts
    // bound it. The deadline is checked as soon as it answers.
    tcp::resolver resolver(executor);
    auto results = co_await resolver.async_resolve(parsed->host, std::to_string(parsed->port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec || results.empty()) {
      error = fmt::format("cannot resolve {}: {}", parsed->host, ec ? ec.message() : "no address");
      co_return response;
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }

  tcp::socket socket(executor);
  Transport transport = parsed->tls ? Transport(std::move(socket), *tls_) : Transport(std::move(socket));
  Watchdog dog(executor);
  // The watchdog cancels the operation pending when the deadline passes. One that completes just before it fires
  // is not cancelled, and the watchdog is then spent: so the deadline is checked before every operation too.
  auto out_of_time = [&] {
    if (!dog.expired() && std::chrono::steady_clock::now() < deadline) return false;
    error = fmt::format("{} {} timed out after {} ms", request.method, request.url, request.timeout.count());
    return true;
  };
  auto arm = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    dog.arm(std::max(left, std::chrono::milliseconds(1)), &transport);
  };

  // One address at a time (a ranged connect would move on to the next address after a cancellation, without
  // any deadline left).
  bool connected = false;
  for (const auto& endpoint : endpoints) {
    if (out_of_time()) co_return response;
    if (transport.socket().is_open()) transport.socket().close(ec);
    arm();
    co_await transport.socket().async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) {
      connected = true;
      break;
    }
  }
  if (!connected) {
    if (!out_of_time()) error = fmt::format("cannot connect to {}: {}", parsed->authority, ec.message());
    co_return response;
  }
  if (out_of_time()) co_return response;
  arm();
  co_await transport.handshake_as_client(parsed->host, true, ec);
  if (ec) {
    if (!out_of_time()) error = fmt::format("TLS with {}: {}", parsed->authority, tls_error_text(ec));
    co_return response;
  }

  std::string head = fmt::format("{} {}{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
                                 request.method, parsed->base_path.empty() ? "/" : parsed->base_path, query,
                                 parsed->authority);
  for (const auto& h : request.headers) head += fmt::format("{}: {}\r\n", h.name, h.value);
  if (!request.body.empty() || request.method == "POST") head += fmt::format("Content-Length: {}\r\n", request.body.size());
  head += "\r\n";
  head += request.body;
  if (out_of_time()) co_return response;
  arm();
  co_await transport.write(asio::buffer(head), ec);
  if (ec) {
    if (!out_of_time()) error = fmt::format("sending to {}: {}", parsed->authority, ec.message());
    co_return response;
  }

  http::ResponseParser parser;
  ResponseHead rh;
  std::string buffer;
  std::size_t filled = 0;
  bool eof = false;
  auto read_more = [&]() -> asio::awaitable<bool> {
    if (out_of_time()) co_return false;
    if (buffer.size() < filled + 16384) buffer.resize(filled + 16384);
    arm();
    std::size_t n = co_await transport.read_some(asio::buffer(buffer.data() + filled, buffer.size() - filled), ec);
    filled += n;
    if (ec == asio::error::eof) {
      eof = true;
      ec = {};
      co_return n > 0;
    }
    co_return !ec;
  };
  auto failed_reading = [&](std::string_view what) {
    if (error.empty()) error = ec ? fmt::format("reading from {}: {}", parsed->authority, ec.message())
                                  : fmt::format("{} {}", parsed->authority, what);
  };
  while (true) {
    auto state = parser.parse(std::string_view(buffer.data(), filled), request.method, rh);
    if (state == http::ResponseParser::State::complete) break;
    if (state == http::ResponseParser::State::failed) {
      error = fmt::format("bad response from {}: {}", parsed->authority, parser.error().message);
      co_return response;
    }
    if (eof || !co_await read_more()) {
      failed_reading("closed the connection before a complete response head");
      co_return response;
    }
  }
  std::size_t pos = parser.head_size();
  auto too_big = [&] {
    error = fmt::format("the response from {} is larger than {} bytes", parsed->authority, request.max_body);
  };
  if (rh.framing == BodyFraming::content_length) {
    if (rh.content_length > request.max_body) {
      too_big();
      co_return response;
    }
    while (filled - pos < rh.content_length) {
      if (eof || !co_await read_more()) {
        failed_reading("closed the connection in the middle of the body");
        co_return response;
      }
    }
    response.body.assign(buffer.data() + pos, rh.content_length);
  } else if (rh.framing == BodyFraming::chunked) {
    http::ChunkedDecoder decoder(502);
    while (!decoder.done()) {
      auto step = decoder.decode(std::string_view(buffer.data() + pos, filled - pos));
      if (step.error.status) {
        error = fmt::format("bad chunked body from {}: {}", parsed->authority, step.error.message);
        co_return response;
      }
      pos += step.consumed;
      response.body.append(step.data);
      if (response.body.size() > request.max_body) {
        too_big();
        co_return response;
      }
      if (step.consumed == 0 && !decoder.done()) {
        if (eof || !co_await read_more()) {
          failed_reading("closed the connection in the middle of the body");
          co_return response;
        }
      }
    }
  } else if (rh.framing == BodyFraming::until_close) {
    // Only a clean end (a TCP FIN, or TLS close_notify) ends such a body; a truncated TLS stream is an error.
    while (!eof) {
      if (filled - pos > request.max_body) {
        too_big();
        co_return response;
      }
      if (!co_await read_more() && !eof) {
        failed_reading("closed the connection uncleanly in the middle of the body");
        co_return response;
      }
    }
    response.body.assign(buffer.data() + pos, filled - pos);
    if (response.body.size() > request.max_body) {
      too_big();
      co_return response;
    }
  }
  dog.disarm();
  transport.close();
  response.status = rh.status;
  response.headers = std::move(rh.headers);
  co_return response;
}

std::optional<std::chrono::seconds> cache_max_age(std::string_view v) {
  std::optional<std::chrono::seconds> out;
  while (!v.empty()) {
    auto comma = v.find(',');
    std::string_view directive = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    while (!directive.empty() && (directive.front() == ' ' || directive.front() == '\t')) directive.remove_prefix(1);
    while (!directive.empty() && (directive.back() == ' ' || directive.back() == '\t')) directive.remove_suffix(1);
    if (iequals(directive, "no-store") || iequals(directive, "no-cache")) return std::chrono::seconds(0);
    if (directive.size() > 8 && iequals(directive.substr(0, 8), "max-age=")) {
      std::string_view n = directive.substr(8);
      if (!n.empty() && n.front() == '"' && n.size() >= 2 && n.back() == '"') n = n.substr(1, n.size() - 2);
      long long seconds = 0;
      auto [end, errc] = std::from_chars(n.data(), n.data() + n.size(), seconds);
      if (errc == std::errc() && end == n.data() + n.size() && seconds >= 0) out = std::chrono::seconds(seconds);
    }
  }
  return out;
}

}  // namespace obsgw::net
