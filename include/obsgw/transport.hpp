#pragma once
/// @file
/// A byte stream over TCP, with or without TLS, read and written from coroutines.

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <variant>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>

namespace obsgw {

class Transport {
 public:
  using tcp = asio::ip::tcp;

  explicit Transport(tcp::socket socket);
  Transport(tcp::socket socket, asio::ssl::context& tls);
  Transport(Transport&&) = default;
  Transport& operator=(Transport&&) = default;

  bool is_tls() const noexcept { return stream_.index() == 1; }
  tcp::socket& socket() noexcept;
  asio::any_io_executor get_executor() noexcept { return socket().get_executor(); }

  /// TLS handshakes (no-ops on plain TCP). `server_name` sets SNI and the name checked in the certificate.
  asio::awaitable<void> handshake_as_server(std::error_code& ec);
  asio::awaitable<void> handshake_as_client(std::string_view server_name, bool verify, std::error_code& ec);

  // The I/O calls return Asio's own awaitable for the operation (no coroutine frame of their own): they are
  // on every request's path. `ec` is written when the operation completes.

  /// Reads at least one byte (or fails, with asio::error::eof at the end of the stream).
  asio::awaitable<std::size_t> read_some(asio::mutable_buffer buf, std::error_code& ec);
  /// Plain TCP only: completes once bytes, the end of the stream or an error wait to be read, holding no buffer
  /// meanwhile (an idle keep-alive connection then costs no read buffer). Follow it with read_now(). TLS has no
  /// such wait (decrypted bytes may already be buffered inside the TLS stream): it fails with operation_not_supported.
  asio::awaitable<void> wait_readable(std::error_code& ec);
  /// Plain TCP only: reads what has already arrived, without waiting. Returns 0 with no error when nothing has
  /// (yet); the end of the stream is asio::error::eof. On TLS it reads nothing and fails with operation_not_supported.
  std::size_t read_now(asio::mutable_buffer buf, std::error_code& ec) noexcept;
  /// Writes every byte of `buf`.
  asio::awaitable<std::size_t> write(asio::const_buffer buf, std::error_code& ec);
  /// Writes every byte of every buffer, in one gathered write where possible. `bufs` must stay alive until
  /// the operation completes (callers co_await it at once).
  asio::awaitable<std::size_t> write(std::span<const asio::const_buffer> bufs, std::error_code& ec);

  /// Writes what the socket takes right now, without waiting: plain TCP only (0 on TLS, or when the socket's
  /// send buffer is full). Most writes on a keep-alive connection fit: they then cost one system call and no
  /// completion through the reactor. The caller writes whatever is left with write_rest(). A failed send (a
  /// reset peer) is reported in `ec`; a socket already closed reports 0 bytes and leaves the error to
  /// write_rest().
  std::size_t write_now(std::span<const asio::const_buffer> bufs, std::error_code& ec) noexcept;
  /// write_now(), and whether nothing is left to await: true when every byte went out or the send failed;
  /// otherwise `sent` tells write_rest() where to go on:
  ///   if (std::size_t sent; !t.write_all_now(bufs, sent, ec)) co_await t.write_rest(bufs, sent, ec);
  bool write_all_now(std::span<const asio::const_buffer> bufs, std::size_t& sent, std::error_code& ec) noexcept {
    sent = write_now(bufs, ec);
    return ec || sent == asio::buffer_size(bufs);
  }
  /// Writes `bufs` except their first `skip` bytes (what write_now() took); completes with the bytes of that
  /// rest. `bufs` must stay alive until the operation completes.
  asio::awaitable<std::size_t> write_rest(std::span<const asio::const_buffer> bufs, std::size_t skip,
                                          std::error_code& ec);

  /// Cancels pending operations (they complete with operation_aborted). Used by deadlines.
  void cancel() noexcept;
  /// Sends a TLS close_notify when applicable, then shuts down the sending side; errors are ignored.
  asio::awaitable<void> shutdown();
  void close() noexcept;
  bool is_open() const noexcept;

 private:
  using TlsStream = asio::ssl::stream<tcp::socket>;
  TlsStream* tls() noexcept {
    auto* p = std::get_if<1>(&stream_);
    return p ? p->get() : nullptr;
  }
  // The TLS stream (over 300 bytes) lives apart: plain connections, the many idle ones included, do not pay for it.
  std::variant<tcp::socket, std::unique_ptr<TlsStream>> stream_;
};

}  // namespace obsgw
