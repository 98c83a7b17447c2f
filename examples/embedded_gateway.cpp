// A gateway built in code, with no config file: two routes to one upstream, a header policy, an admin port.
//
//   embedded_gateway [listen=127.0.0.1:8080] [upstream=http://127.0.0.1:9000]
//
// Stop it with Ctrl-C (it drains in-flight requests first).

#include <csignal>
#include <iostream>

#include "obsgw/obsgw.hpp"

int main(int argc, char** argv) {
  std::string listen = argc > 1 ? argv[1] : "127.0.0.1:8080";
  std::string upstream = argc > 2 ? argv[2] : "http://127.0.0.1:9000";

  constexpr unsigned threads = 2;
  obsgw::GatewayBuilder builder(threads);
  builder.upstream(obsgw::UpstreamOptions{.name = "backend", .url = upstream});

  // Every response says it came through the gateway; requests lose a header clients must not set.
  obsgw::HeaderEdits on_request, on_response;
  on_request.remove = {"X-Internal-Debug"};
  on_response.set = {{"X-Gateway", "embedded"}};
  auto stamp = std::make_shared<obsgw::HeaderTransform>(on_request, on_response);

  builder.route("push").path("/api/v1/push").methods({"POST"}).to("backend").use(stamp);
  builder.route("everything-else").path_prefix("/").to("backend").use(stamp);

  obsgw::ServerOptions options;
  auto address = obsgw::parse_listen_address(listen);
  if (!address) {
    std::cerr << "bad listen address: " << listen << "\n";
    return 2;
  }
  options.listeners.push_back(*address);
  options.admin = obsgw::ListenerOptions{"127.0.0.1", 0};
  options.threads = threads;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before the io threads start, so only sigwait sees them

  obsgw::Server server(options, builder.build(), std::make_shared<obsgw::Logger>(1));
  server.start();
  std::cout << "serving on " << server.endpoints().at(0) << " -> " << upstream << " (admin on "
            << *server.admin_endpoint() << ")" << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  server.drain(std::chrono::seconds(10));
  server.wait();
  return 0;
}
