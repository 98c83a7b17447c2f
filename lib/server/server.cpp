#include "obsgw/server.hpp"

#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "admin/admin_handler.hpp"
#include "server/client_connection.hpp"
#include "server/metrics.hpp"
#include "server/proxy_handler.hpp"
#include "server/spare_request_state.hpp"
#include "util/spare_buffers.hpp"

namespace obsgw {

namespace {
using tcp = asio::ip::tcp;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

// Modern TLS 1.2 suites (forward secrecy, AEAD); TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*) {
  // We speak HTTP/1.1 only; a client offering h2 and http/1.1 gets http/1.1.
  for (unsigned i = 0; i < inlen;) {
    unsigned len = in[i];
    if (i + 1 + len <= inlen && len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *outlen = 8;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::shared_ptr<asio::ssl::context> make_server_tls(const ListenerOptions& l) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(native, kTls12Ciphers);
  // OpenSSL's record buffers (about 34 KB) are freed while a connection has nothing in flight, as nginx does:
  // idle keep-alive connections are the many, and they should not each hold them.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(native, select_http11, nullptr);
  std::string where = fmt::format("TLS listener {}:{}", l.host, l.port);
  std::error_code ec;
  ctx->use_certificate_chain_file(l.cert_file, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot load cert_file \"{}\": {}", where, l.cert_file, ec.message()));
  ctx->use_private_key_file(l.key_file, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot load key_file \"{}\": {}", where, l.key_file, ec.message()));
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error(fmt::format("{}: key_file does not match cert_file", where));
  return ctx;
}
}  // namespace

struct Server::Impl {
  struct Worker {
    // Each socket is only ever touched by the io thread that owns it (other threads post to it), so the reactor's
    // per-descriptor locking is not needed; the scheduler keeps its lock for those posts.
    explicit Worker(unsigned i) : index(i), io(ASIO_CONCURRENCY_HINT_UNSAFE_IO), guard(asio::make_work_guard(io)) {}
    unsigned index;
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // one per proxy listener
    std::unique_ptr<tcp::acceptor> admin_acceptor;
    std::unique_ptr<detail::ProxyHandler> proxy;
    std::unique_ptr<detail::AdminHandler> admin;
    std::unordered_set<detail::ClientConnection*> connections;
    bool draining = false;
    std::thread thread;
  };

  ServerOptions options;
  std::shared_ptr<Logger> logger;
  std::vector<std::shared_ptr<asio::ssl::context>> tls;  // per listener; null for plain
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<tcp::endpoint> endpoints;
  std::optional<tcp::endpoint> admin_endpoint;
  mutable std::mutex gateway_mutex;
  std::shared_ptr<const Gateway> gateway;
  std::atomic<std::int64_t> connections{0};
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};

  // Each io thread, every SpareBuffers::kTrimInterval: spare buffers and request heads unused since the previous
  // round are freed, so memory returns after a burst even when no request follows it.
  static asio::awaitable<void> housekeeping(Worker& w) {
    asio::steady_timer timer(w.io);
    while (!w.draining) {
      timer.expires_after(util::SpareBuffers::kTrimInterval);
      std::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || w.draining) break;
      util::SpareBuffers::trim();
      detail::SpareRequestState::trim();
    }
  }

  std::shared_ptr<const Gateway> current_gateway() const {
    std::lock_guard lock(gateway_mutex);
    return gateway;
  }

  std::unique_ptr<tcp::acceptor> bind(asio::io_context& io, const ListenerOptions& l, std::uint16_t port) {
    std::error_code ec;
    auto addr = asio::ip::make_address(l.host, ec);
    if (ec) throw std::runtime_error(fmt::format("listen address \"{}\" is not an IP address", l.host));
    tcp::endpoint ep(addr, port);
    auto acc = std::make_unique<tcp::acceptor>(io);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc->set_option(reuse_port(true), ec);
    if (!ec && addr.is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, fmt::format("cannot listen on {}:{}", l.host, port));
    return acc;
  }

  // Over the connection limit or draining: a plain-HTTP client gets a 503 (best effort, never blocking); a TLS
  // client cannot read plaintext, so it is just closed.
  static void refuse(tcp::socket& s, bool tls) {
    static const std::string response = [] {
      std::string body = "{\"error\":\"too_many_connections\",\"message\":\"the gateway is at its connection limit\"}\n";
      return fmt::format("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
                         "Retry-After: 1\r\nConnection: close\r\n\r\n{}", body.size(), body);
    }();
    std::error_code ec;
    s.non_blocking(true, ec);
    if (!tls) s.write_some(asio::buffer(response), ec);  // best effort; never blocks the io thread
    s.shutdown(tcp::socket::shutdown_both, ec);
    s.close(ec);
  }

  // Not a coroutine on purpose: its locals (a second Transport among them) would otherwise take room in the frame
  // of serve(), and so in every connection's memory for its whole life.
  detail::ClientConnection make_connection(tcp::socket socket, asio::ssl::context* tls_ctx,
                                           detail::RequestHandler& handler) {
    ConnectionInfo info;
    std::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    auto local = socket.local_endpoint(ec);
    info.peer_address = peer.address();
    info.peer_port = peer.port();
    info.local_port = local.port();
    info.tls = tls_ctx != nullptr;
    auto addr = info.peer_address;
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    info.peer_ip = addr.to_string();
    socket.set_option(tcp::no_delay(true), ec);
    Transport t = tls_ctx ? Transport(std::move(socket), *tls_ctx) : Transport(std::move(socket));
    return detail::ClientConnection(std::move(t), std::move(info), options, handler);
  }

  asio::awaitable<void> serve(Worker& w, tcp::socket socket, std::shared_ptr<asio::ssl::context> tls_ctx,
                              detail::RequestHandler& handler) {
    detail::ClientConnection conn = make_connection(std::move(socket), tls_ctx.get(), handler);
    w.connections.insert(&conn);
    try {
      co_await conn.run();
    } catch (const std::exception& e) {
      logger->log(LogLevel::error, "connection failed", {{"what", e.what()}});
    }
    w.connections.erase(&conn);
    connections.fetch_sub(1, std::memory_order_relaxed);
  }

  asio::awaitable<void> accept_loop(Worker& w, tcp::acceptor& acc, std::shared_ptr<asio::ssl::context> tls_ctx,
                                    bool admin) {
    asio::steady_timer backoff(w.io);
    while (acc.is_open()) {
      auto [ec, socket] = co_await acc.async_accept(use_tuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
        // Out of file descriptors and the like: back off instead of spinning.
        logger->log(LogLevel::warn, "accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(use_tuple);
        continue;
      }
      if (w.draining) {
        refuse(socket, tls_ctx != nullptr);
        continue;
      }
      if (!admin && connections.load(std::memory_order_relaxed) >= static_cast<std::int64_t>(options.max_connections)) {
        detail::Metrics::instance().refused_connections.fetch_add(1, std::memory_order_relaxed);
        refuse(socket, tls_ctx != nullptr);
        continue;
      }
      connections.fetch_add(1, std::memory_order_relaxed);
      detail::RequestHandler& handler = admin ? static_cast<detail::RequestHandler&>(*w.admin) : *w.proxy;
      asio::co_spawn(w.io, serve(w, std::move(socket), tls_ctx, handler), asio::detached);
    }
  }
};

Server::Server(ServerOptions options, std::shared_ptr<const Gateway> gateway, std::shared_ptr<Logger> logger)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->gateway = std::move(gateway);
  if (impl_->gateway) detail::Metrics::instance().set_region(impl_->gateway->options().region);
  impl_->logger = logger ? std::move(logger) : std::make_shared<Logger>();
  set_event_logger(impl_->logger);
  for (const auto& l : impl_->options.listeners) impl_->tls.push_back(l.tls ? make_server_tls(l) : nullptr);
}

Server::~Server() {
  if (impl_->started && !impl_->stopped) {
    drain(std::chrono::milliseconds(0));
    wait();
  }
}

void Server::start() {
  auto& im = *impl_;
  unsigned n = im.options.threads ? im.options.threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Impl::Worker>(i);
    w->proxy = std::make_unique<detail::ProxyHandler>(im.gateway, im.logger);
    w->admin = std::make_unique<detail::AdminHandler>([&im] { return im.current_gateway(); });
    im.workers.push_back(std::move(w));
  }
  // Every worker listens on the same ports (SO_REUSEPORT): the kernel spreads connections, no lock is shared.
  for (const auto& l : im.options.listeners) {
    std::uint16_t port = l.port;
    for (auto& w : im.workers) {
      w->acceptors.push_back(im.bind(w->io, l, port));
      if (port == 0) port = w->acceptors.back()->local_endpoint().port();
    }
    im.endpoints.push_back(im.workers.front()->acceptors.back()->local_endpoint());
  }
  if (im.options.admin) {
    auto& w0 = *im.workers.front();
    w0.admin_acceptor = im.bind(w0.io, *im.options.admin, im.options.admin->port);
    im.admin_endpoint = w0.admin_acceptor->local_endpoint();
  }
  for (auto& w : im.workers) {
    asio::co_spawn(w->io, Impl::housekeeping(*w), asio::detached);
    for (std::size_t i = 0; i < w->acceptors.size(); ++i)
      asio::co_spawn(w->io, im.accept_loop(*w, *w->acceptors[i], im.tls[i], false), asio::detached);
    if (w->admin_acceptor) asio::co_spawn(w->io, im.accept_loop(*w, *w->admin_acceptor, nullptr, true), asio::detached);
  }
  for (auto& w : im.workers) {
    Impl::Worker* wp = w.get();
    w->thread = std::thread([wp] {
      detail::t_worker_index = wp->index;
      wp->io.run();
    });
  }
  im.started = true;
}

std::vector<asio::ip::tcp::endpoint> Server::endpoints() const { return impl_->endpoints; }
std::optional<asio::ip::tcp::endpoint> Server::admin_endpoint() const { return impl_->admin_endpoint; }

void Server::reload(std::shared_ptr<const Gateway> gateway) {
  {
    std::lock_guard lock(impl_->gateway_mutex);
    impl_->gateway = gateway;
    if (gateway) detail::Metrics::instance().set_region(gateway->options().region);
  }
  for (auto& w : impl_->workers) {
    Impl::Worker* wp = w.get();
    asio::post(w->io, [wp, gateway] { wp->proxy->set_gateway(gateway); });
  }
}

void Server::drain(std::chrono::milliseconds deadline) {
  auto& im = *impl_;
  if (!im.started || im.stopped) return;
  for (auto& w : im.workers) {
    Impl::Worker* wp = w.get();
    asio::post(w->io, [wp] {
      wp->draining = true;
      std::error_code ec;
      for (auto& a : wp->acceptors) a->close(ec);
      if (wp->admin_acceptor) wp->admin_acceptor->close(ec);
      for (auto* c : wp->connections) c->begin_drain();
    });
  }
  auto until = std::chrono::steady_clock::now() + deadline;
  while (im.connections.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (im.connections.load() > 0) {
    im.logger->log(LogLevel::warn, "drain deadline passed; closing remaining connections",
                   {{"connections", im.connections.load()}});
    for (auto& w : im.workers) {
      Impl::Worker* wp = w.get();
      asio::post(w->io, [wp] {
        for (auto* c : wp->connections) c->abort();
      });
    }
    auto hard = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (im.connections.load() > 0 && std::chrono::steady_clock::now() < hard)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& w : im.workers) {
    w->guard.reset();
    w->io.stop();
  }
  im.stopped = true;
}

void Server::wait() {
  for (auto& w : impl_->workers)
    if (w->thread.joinable()) w->thread.join();
}

std::string Server::stats_json() const { return detail::Metrics::instance().render_stats_json(); }
std::string Server::metrics_text() const { return detail::Metrics::instance().render_prometheus(); }

void Server::note_reload(bool ok) noexcept {
  (ok ? detail::Metrics::instance().reloads_ok : detail::Metrics::instance().reloads_failed)
      .fetch_add(1, std::memory_order_relaxed);
}

}  // namespace obsgw
