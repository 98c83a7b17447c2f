// A policy of one's own, usable from code and from the JSON config.
//
// ConcurrencyLimit refuses a request with 503 when a route already has `max_in_flight` requests in progress,
// the kind of guard a fragile backend needs. It shows the three hooks most policies use: a synchronous
// decision (on_request), bookkeeping after the exchange (on_complete), and a factory for the config file:
//
//   {"type": "concurrency_limit", "max_in_flight": 100}
//
//   custom_policy CONFIG.json      (gatewayd's config format, with this policy type available)

#include <atomic>
#include <csignal>
#include <iostream>

#include "obsgw/obsgw.hpp"

class ConcurrencyLimit final : public obsgw::RateLimiter {
 public:
  explicit ConcurrencyLimit(std::int64_t max_in_flight) : max_(max_in_flight) {}

  std::string_view name() const noexcept override { return "concurrency_limit"; }

  obsgw::Verdict on_request(obsgw::Exchange& ex) const override {
    // Counted for every request that reached this policy; on_complete() gives the slot back.
    if (in_flight_.fetch_add(1, std::memory_order_relaxed) >= max_) {
      return obsgw::Verdict::reject(503, "too_busy", "this route is at its concurrency limit")
          .with_header("Retry-After", "1");
    }
    return obsgw::Verdict::proceed();
  }

  void on_complete(const obsgw::Exchange&) const noexcept override {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  std::int64_t max_;
  mutable std::atomic<std::int64_t> in_flight_{0};
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: custom_policy CONFIG.json\n";
    return 2;
  }
  auto registry = obsgw::PolicyRegistry::with_builtins();
  registry.add("concurrency_limit", [](const obsgw::ConfigNode& node, obsgw::ConfigProblems& problems)
                                        -> std::shared_ptr<const obsgw::Policy> {
    node.expect_object({"type", "max_in_flight"}, problems);
    auto max = node.get_int("max_in_flight", 64, 1, 1'000'000, problems);
    return std::make_shared<ConcurrencyLimit>(max);
  });

  try {
    obsgw::Config config = obsgw::load_config_file(argv[1], registry);
    unsigned threads = config.server.threads ? config.server.threads : 2;
    auto gateway = obsgw::build_gateway(config, threads, registry);

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    obsgw::Server server(config.server, gateway, std::make_shared<obsgw::Logger>(1, config.logging.level));
    server.start();
    std::cout << "serving on " << server.endpoints().at(0) << std::endl;
    int sig = 0;
    sigwait(&signals, &sig);
    server.drain(config.server.drain_timeout);
    server.wait();
  } catch (const obsgw::ConfigError& e) {
    std::cerr << "invalid configuration:\n" << e.what() << "\n";
    return 2;
  }
  return 0;
}
