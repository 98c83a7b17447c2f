#include "net/background_loop.hpp"

#include <atomic>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "server/metrics.hpp"

namespace obsgw::net {

namespace {
std::atomic<bool> g_stopping{false};

class BackgroundLoop {
 public:
  // Metrics is touched by the loop's fetches: constructing it first makes it outlive the loop at exit.
  BackgroundLoop() : metrics_((detail::Metrics::instance(), 0)), work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~BackgroundLoop() {
    g_stopping = true;
    io_.stop();
    thread_.join();
  }
  asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  int metrics_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};
}  // namespace

bool background_stopping() noexcept { return g_stopping.load(); }

asio::any_io_executor background_executor() {
  static BackgroundLoop loop;
  return loop.executor();
}

}  // namespace obsgw::net
