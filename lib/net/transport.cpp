#include "obsgw/transport.hpp"

#include <asio/redirect_error.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <array>
#include <string>
#include <vector>

namespace obsgw {

namespace {
auto token(std::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }
}  // namespace

Transport::Transport(tcp::socket socket) : stream_(std::in_place_index<0>, std::move(socket)) {}

Transport::Transport(tcp::socket socket, asio::ssl::context& tls)
    : stream_(std::in_place_index<1>, std::make_unique<TlsStream>(std::move(socket), tls)) {}

Transport::tcp::socket& Transport::socket() noexcept {
  if (auto* s = std::get_if<0>(&stream_)) return *s;
  return tls()->next_layer();
}

bool Transport::is_open() const noexcept {
  if (auto* s = std::get_if<0>(&stream_)) return s->is_open();
  return std::get<1>(stream_)->next_layer().is_open();
}

asio::awaitable<void> Transport::handshake_as_server(std::error_code& ec) {
  ec = {};
  if (auto* s = tls()) co_await s->async_handshake(asio::ssl::stream_base::server, token(ec));
}

asio::awaitable<void> Transport::handshake_as_client(std::string_view server_name, bool verify, std::error_code& ec) {
  ec = {};
  auto* s = tls();
  if (s == nullptr) co_return;
  std::string name(server_name);
  // SNI must not be an IP address literal (RFC 6066 3).
  std::error_code ignored;
  bool is_ip = !asio::ip::make_address(name, ignored).is_unspecified() && !ignored;
  if (!is_ip) SSL_set_tlsext_host_name(s->native_handle(), name.c_str());
  if (verify) {
    s->set_verify_mode(asio::ssl::verify_peer);
    s->set_verify_callback(asio::ssl::host_name_verification(name));
  } else {
    s->set_verify_mode(asio::ssl::verify_none);
  }
  co_await s->async_handshake(asio::ssl::stream_base::client, token(ec));
}

asio::awaitable<std::size_t> Transport::read_some(asio::mutable_buffer buf, std::error_code& ec) {
  if (auto* s = std::get_if<0>(&stream_)) return s->async_read_some(buf, token(ec));
  return tls()->async_read_some(buf, token(ec));
}

namespace {
asio::awaitable<void> not_supported(std::error_code& ec) {
  ec = asio::error::operation_not_supported;
  co_return;
}
}  // namespace

asio::awaitable<void> Transport::wait_readable(std::error_code& ec) {
  if (auto* s = std::get_if<0>(&stream_)) return s->async_wait(tcp::socket::wait_read, token(ec));
  return not_supported(ec);
}

std::size_t Transport::read_now(asio::mutable_buffer buf, std::error_code& ec) noexcept {
  ec = {};
  auto* s = std::get_if<0>(&stream_);
  if (s == nullptr) {
    ec = asio::error::operation_not_supported;
    return 0;
  }
  if (!s->non_blocking()) s->non_blocking(true, ec);  // a read that would wait fails instead
  if (ec) return 0;
  const std::size_t n = s->read_some(buf, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
  return n;
}

asio::awaitable<std::size_t> Transport::write(asio::const_buffer buf, std::error_code& ec) {
  if (auto* s = std::get_if<0>(&stream_)) return asio::async_write(*s, buf, token(ec));
  return asio::async_write(*tls(), buf, token(ec));
}

asio::awaitable<std::size_t> Transport::write(std::span<const asio::const_buffer> bufs, std::error_code& ec) {
  if (auto* s = std::get_if<0>(&stream_)) return asio::async_write(*s, bufs, token(ec));
  return asio::async_write(*tls(), bufs, token(ec));
}

std::size_t Transport::write_now(std::span<const asio::const_buffer> bufs, std::error_code& ec) noexcept {
  ec = {};
  auto* s = std::get_if<0>(&stream_);
  if (s == nullptr) return 0;
  if (!s->non_blocking()) {
    s->non_blocking(true, ec);  // a synchronous write that would wait fails instead
    if (ec) {
      ec = {};
      return 0;
    }
  }
  const std::size_t n = s->write_some(bufs, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    return 0;
  }
  return ec ? 0 : n;
}

namespace {
// The slow path of write_rest: part of the buffers went out already.
asio::awaitable<std::size_t> write_after(Transport& t, std::span<const asio::const_buffer> bufs, std::size_t skip,
                                         std::error_code& ec) {
  std::vector<asio::const_buffer> rest;
  rest.reserve(bufs.size());
  for (const auto& b : bufs) {
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    rest.push_back(asio::buffer(static_cast<const char*>(b.data()) + skip, b.size() - skip));
    skip = 0;
  }
  co_return co_await t.write(std::span<const asio::const_buffer>(rest), ec);
}
}  // namespace

asio::awaitable<std::size_t> Transport::write_rest(std::span<const asio::const_buffer> bufs, std::size_t skip,
                                                   std::error_code& ec) {
  if (skip == 0) return write(bufs, ec);  // no frame of ours on TLS or after a would-block
  return write_after(*this, bufs, skip, ec);
}

void Transport::cancel() noexcept {
  std::error_code ec;
  socket().cancel(ec);
}

asio::awaitable<void> Transport::shutdown() {
  std::error_code ec;
  // TLS: send close_notify (and wait for the peer's; callers bound this with a deadline).
  if (auto* s = tls()) co_await s->async_shutdown(token(ec));
  socket().shutdown(tcp::socket::shutdown_send, ec);
}

void Transport::close() noexcept {
  std::error_code ec;
  socket().close(ec);
}

}  // namespace obsgw
