// gatewayd: parse flags, load the config, wire the policies, run, reload on SIGHUP, drain on SIGTERM.

#include <sys/resource.h>

#include <csignal>
#include <ctime>
#include <cstdio>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include "allocator.hpp"
#include "obsgw/obsgw.hpp"

namespace {

struct Overrides {
  std::vector<std::string> listen;
  std::string admin_listen;
  unsigned threads = 0;
  std::string log_level;
};

// Loads the file and applies command-line/environment overrides. Throws ConfigError.
obsgw::Config load(const std::string& path, const Overrides& o) {
  obsgw::Config c = obsgw::load_config_file(path);
  std::vector<std::string> problems;
  if (!o.listen.empty()) {
    std::erase_if(c.server.listeners, [](const obsgw::ListenerOptions& l) { return !l.tls; });
    for (const auto& a : o.listen) {
      auto l = obsgw::parse_listen_address(a);
      if (!l) problems.push_back("--listen: \"" + a + "\" is not host:port");
      else c.server.listeners.push_back(*l);
    }
  }
  if (!o.admin_listen.empty()) {
    c.server.admin = obsgw::parse_listen_address(o.admin_listen);
    if (!c.server.admin) problems.push_back("--admin-listen: \"" + o.admin_listen + "\" is not host:port");
  }
  if (o.threads) c.server.threads = o.threads;
  if (!o.log_level.empty() && !obsgw::parse_log_level(o.log_level, c.logging.level))
    problems.push_back("--log-level: \"" + o.log_level + "\" is not one of debug, info, warn, error, off");
  if (c.server.listeners.empty()) problems.push_back(path + ": server.listen: at least one listener is required");
  if (!problems.empty()) throw obsgw::ConfigError(problems);
  return c;
}

unsigned io_threads(const obsgw::Config& c) {
  return c.server.threads ? c.server.threads : std::max(1u, std::thread::hardware_concurrency());
}

// Every client connection is a descriptor, and a busy one needs an upstream one too: the soft limit on open files
// is raised to the hard limit (as Go's runtime does), so that a shell's default of 1024 does not cut
// max_connections short. Returns the limit now in force.
rlim_t raise_open_file_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return raised.rlim_cur;
  }
  return lim.rlim_cur;
}

// Says which routes drop a client's X-Scope-OrgID because they authenticate without a tenant policy: an
// operator who relied on the client's header passing through learns it at start, not from the backend's errors.
void note_untrusted_tenant_headers(const obsgw::Gateway& gateway, obsgw::Logger& logger) {
  for (const auto& route : gateway.router().routes())
    for (const auto& policy : route.policies)
      if (policy->name() == "untrusted_tenant_header")
        logger.log(obsgw::LogLevel::info, "route drops client X-Scope-OrgID (authenticated, no tenant policy)",
                   {{"route", route.name}, {"hint", "add a tenant policy, or set trust_client_tenant_header"}});
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gatewayd: authenticating multi-tenant gateway for observability backends"};
  std::string config_path;
  bool check_only = false;
  Overrides o;
  app.add_option("-c,--config", config_path, "JSON configuration file")->envname("OBSGW_CONFIG")->required();
  app.add_flag("--check", check_only, "validate the configuration and exit (non-zero with the problems)");
  app.add_option("--listen", o.listen, "plain HTTP listen address host:port (repeatable; replaces server.listen)")
      ->envname("OBSGW_LISTEN")->delimiter(',');
  app.add_option("--admin-listen", o.admin_listen, "admin listen address host:port")->envname("OBSGW_ADMIN_LISTEN");
  app.add_option("--threads", o.threads, "io threads (0 = number of cores)")->envname("OBSGW_THREADS");
  app.add_option("--log-level", o.log_level, "debug, info, warn, error or off")->envname("OBSGW_LOG_LEVEL");
  CLI11_PARSE(app, argc, argv);

  // Signals are taken on this thread only: block them before any thread starts (building the gateway starts
  // the background loop that fetches identity providers' keys), so that every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  obsgw::Config config;
  std::shared_ptr<const obsgw::Gateway> gateway;
  std::shared_ptr<obsgw::Logger> logger;
  try {
    config = load(config_path, o);
    if (!check_only) {
      logger = std::make_shared<obsgw::Logger>(1, config.logging.level);
      obsgw::set_event_logger(logger);  // key fetches begin while the gateway is built
    }
    gateway = obsgw::build_gateway(config, io_threads(config));
  } catch (const obsgw::ConfigError& e) {
    std::cerr << "gatewayd: invalid configuration:\n" << e.what() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << "gatewayd: configuration " << config_path << " is valid (" << config.routes.size() << " routes, "
              << config.upstreams.size() << " upstreams)\n";
    return 0;
  }

  // Each client connection may hold an upstream connection while its request is forwarded; 64 for listeners,
  // the log, key fetches and Redis.
  const rlim_t open_files = raise_open_file_limit();
  const auto needed = 2 * static_cast<rlim_t>(config.server.max_connections) + 64;
  if (open_files != RLIM_INFINITY && open_files < needed)
    logger->log(obsgw::LogLevel::warn, "open file limit below what max_connections needs",
                {{"open_files", static_cast<std::uint64_t>(open_files)},
                 {"max_connections", config.server.max_connections},
                 {"needed", static_cast<std::uint64_t>(needed)},
                 {"hint", "raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower server.max_connections"}});

  std::unique_ptr<obsgw::Server> server;
  try {
    server = std::make_unique<obsgw::Server>(config.server, gateway, logger);
    server->start();
  } catch (const std::exception& e) {
    std::cerr << "gatewayd: cannot start: " << e.what() << "\n";
    return 1;
  }
  note_untrusted_tenant_headers(*gateway, *logger);
  gateway.reset();  // the server holds it; kept here, a reload could never release its stores and connections
  for (const auto& ep : server->endpoints())
    logger->log(obsgw::LogLevel::info, "listening", {{"address", ep.address().to_string()}, {"port", ep.port()}});
  if (auto admin = server->admin_endpoint())
    logger->log(obsgw::LogLevel::info, "admin listening", {{"address", admin->address().to_string()}, {"port", admin->port()}});
  logger->log(obsgw::LogLevel::info, "started",
              {{"threads", io_threads(config)}, {"routes", config.routes.size()}, {"malloc", gatewayd::allocator_name()}});

  const auto server_options = config.server;
  while (true) {
    // Between signals, every 10 s: what the io threads trimmed goes back to the system.
    const timespec release_interval{10, 0};
    const int sig = sigtimedwait(&set, nullptr, &release_interval);
    if (sig < 0) {
      gatewayd::release_free_memory();
      continue;
    }
    if (sig == SIGHUP) {
      try {
        obsgw::Config next = load(config_path, o);
        if (next.server.listeners.size() != server_options.listeners.size() || next.server.threads != server_options.threads)
          logger->log(obsgw::LogLevel::warn, "listener and thread changes take effect only after a restart");
        auto next_gateway = obsgw::build_gateway(next, io_threads(config));
        note_untrusted_tenant_headers(*next_gateway, *logger);
        server->reload(std::move(next_gateway));
        logger->set_level(next.logging.level);
        server->note_reload(true);
        logger->log(obsgw::LogLevel::info, "configuration reloaded", {{"routes", next.routes.size()}});
      } catch (const obsgw::ConfigError& e) {
        server->note_reload(false);
        logger->log(obsgw::LogLevel::error, "reload rejected; keeping the running configuration", {{"problems", e.what()}});
      }
      continue;
    }
    logger->log(obsgw::LogLevel::info, "draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                                                   {"deadline_ms", server_options.drain_timeout.count()}});
    server->drain(server_options.drain_timeout);
    server->wait();
    logger->log(obsgw::LogLevel::info, "stopped");
    logger->flush();
    return 0;
  }
}
