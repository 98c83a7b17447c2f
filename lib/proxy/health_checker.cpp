#include "proxy/health_checker.hpp"

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "http/response_parser.hpp"
#include "net/background_loop.hpp"
#include "net/watchdog.hpp"
#include "util/event_log.hpp"

namespace obsgw::proxy {

namespace {

using tcp = asio::ip::tcp;

// One check of one endpoint within `timeout`: true for a 2xx answer.
asio::awaitable<bool> check_once(const HealthTarget& t, const EndpointState& e, std::string& why) {
  auto executor = co_await asio::this_coro::executor;
  std::error_code ec;
  tcp::resolver resolver(executor);
  auto results = co_await resolver.async_resolve(e.host, std::to_string(e.port), asio::redirect_error(asio::use_awaitable, ec));
  if (ec || results.empty()) {
    why = "cannot resolve";
    co_return false;
  }
  tcp::socket socket(executor);
  Transport transport = t.tls ? Transport(std::move(socket), *t.tls) : Transport(std::move(socket));
  net::Watchdog dog(executor);
  dog.arm(t.options.timeout, &transport);
  co_await asio::async_connect(transport.socket(), results, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec && t.tls) co_await transport.handshake_as_client(t.server_name, t.tls_verify, ec);
  std::string request = fmt::format("GET {}{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: obsgw-health-check\r\nConnection: close\r\n\r\n",
                                    t.base_path, t.options.path, t.authority);
  if (!ec) co_await transport.write(asio::buffer(request), ec);
  std::string buf(16 * 1024, '\0');
  std::size_t have = 0;
  http::ResponseParser parser;
  ResponseHead head;
  auto state = http::ResponseParser::State::incomplete;
  while (!ec && state == http::ResponseParser::State::incomplete && have < buf.size()) {
    std::size_t n = co_await transport.read_some(asio::buffer(buf.data() + have, buf.size() - have), ec);
    have += n;
    state = parser.parse({buf.data(), have}, "GET", head);
  }
  const bool timed_out = dog.expired();
  dog.disarm();
  transport.close();
  if (state == http::ResponseParser::State::complete) {
    if (head.status >= 200 && head.status < 300) co_return true;
    why = fmt::format("status {}", head.status);
    co_return false;
  }
  why = timed_out ? "timed out" : ec ? ec.message() : "invalid response";
  co_return false;
}

asio::awaitable<void> check_loop(std::weak_ptr<const HealthTarget> weak) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  while (!net::background_stopping()) {
    auto target = weak.lock();
    if (!target) co_return;
    for (std::size_t i = 0; i < target->endpoints->size(); ++i) {
      EndpointState& e = target->endpoints->at(i);
      std::string why;
      bool ok = co_await check_once(*target, e, why);
      const bool was = e.healthy.load(std::memory_order_relaxed);
      if (ok) {
        e.check_failures = 0;
        if (!was && ++e.check_passes >= target->options.healthy_threshold) {
          e.healthy.store(true, std::memory_order_relaxed);
          util::log_event(LogLevel::info, "upstream endpoint healthy again", {{"upstream", target->upstream}, {"endpoint", e.label}});
        }
      } else {
        e.check_passes = 0;
        if (was && ++e.check_failures >= target->options.unhealthy_threshold) {
          e.healthy.store(false, std::memory_order_relaxed);
          util::log_event(LogLevel::warn, "upstream endpoint failed its health checks",
                          {{"upstream", target->upstream}, {"endpoint", e.label}, {"reason", why}});
        }
      }
    }
    const auto interval = target->options.interval;
    target.reset();  // a retired forwarder must not be kept alive by a sleeping checker
    timer.expires_after(interval);
    std::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

void start_health_checks(std::weak_ptr<const HealthTarget> target) {
  asio::co_spawn(net::background_executor(), check_loop(std::move(target)), asio::detached);
}

}  // namespace obsgw::proxy
