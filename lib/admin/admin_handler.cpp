#include "admin/admin_handler.hpp"

#include "server/metrics.hpp"
#include "util/json_escape.hpp"

namespace obsgw::detail {

namespace {
ResponseHead json_head(int status) {
  ResponseHead h;
  h.status = status;
  h.headers.add("Content-Type", "application/json");
  h.headers.add("Cache-Control", "no-store");
  return h;
}
}  // namespace

asio::awaitable<void> AdminHandler::handle(Exchange& ex, ClientConnection& down) {
  std::error_code ec;
  const auto& req = ex.request();
  if (req.method != "GET" && req.method != "HEAD") {
    std::vector<HeaderField> allow{HeaderField{"Allow", "GET, HEAD"}};  // built outside co_await: GCC 12 bug
    co_await down.respond(405, "method_not_allowed", "admin endpoints accept GET and HEAD", allow, ec);
    co_return;
  }
  if (req.path == "/health") {
    std::string_view body = "{\"status\":\"ok\"}\n";  // GCC 12 rejects array temporaries in co_await arguments
    co_await down.respond_with_body(json_head(200), body, ec);
  } else if (req.path == "/ready") {
    auto gw = current_gateway_();
    if (!gw) {
      std::string_view body = "{\"status\":\"not_ready\",\"reason\":\"no configuration loaded\"}\n";
      co_await down.respond_with_body(json_head(503), body, ec);
      co_return;
    }
    bool all = true;
    std::string upstreams = "{";
    for (const auto& f : gw->upstreams()) {
      bool ok = co_await f->probe();
      all = all && ok;
      if (upstreams.size() > 1) upstreams += ',';
      util::append_json_string(upstreams, f->name());
      upstreams += ok ? ":\"reachable\"" : ":\"unreachable\"";
    }
    upstreams += '}';
    std::string body = std::string("{\"status\":\"") + (all ? "ready" : "not_ready") + "\",\"upstreams\":" + upstreams + "}\n";
    co_await down.respond_with_body(json_head(all ? 200 : 503), body, ec);
  } else if (req.path == "/stats") {
    co_await down.respond_with_body(json_head(200), Metrics::instance().render_stats_json() + "\n", ec);
  } else if (req.path == "/metrics") {
    ResponseHead h;
    h.headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    h.headers.add("Cache-Control", "no-store");
    co_await down.respond_with_body(std::move(h), Metrics::instance().render_prometheus(), ec);
  } else {
    co_await down.respond(404, "not_found", "admin endpoints: /health, /ready, /stats, /metrics", {}, ec);
  }
}

}  // namespace obsgw::detail
