#include "admin/admin_handler.hpp"

#include <algorithm>

#include "obsgw/tenant_resolver.hpp"
#include "policies/quota_report.hpp"
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

asio::awaitable<void> AdminHandler::quota_usage(Exchange& ex, ClientConnection& down) {
  std::error_code ec;
  std::string tenant;
  for (std::string_view q = ex.request().query; !q.empty();) {
    auto amp = q.find('&');
    auto pair = q.substr(0, amp);
    if (pair.starts_with("tenant=")) tenant = std::string(pair.substr(7));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  if (!is_valid_tenant_id(tenant)) {
    co_await down.respond(400, "invalid_tenant", "give ?tenant=NAME with a valid tenant id", {}, ec);
    co_return;
  }
  auto gw = current_gateway_();
  std::vector<const QuotaReport*> quotas;
  if (gw)
    for (const auto& route : gw->router().routes())
      for (const auto& p : route.policies)
        if (auto* q = dynamic_cast<const QuotaReport*>(p.get()); q && std::find(quotas.begin(), quotas.end(), q) == quotas.end())
          quotas.push_back(q);
  std::string body = "{\"tenant\":";
  util::append_json_string(body, tenant);
  body += ",\"quotas\":[";
  bool complete = true;
  for (std::size_t i = 0; i < quotas.size(); ++i) {
    std::string one = co_await quotas[i]->usage_json(tenant);
    if (one.empty()) {
      complete = false;
      continue;
    }
    if (body.back() != '[') body += ',';
    body += one;
  }
  body += "]}\n";
  // A store that did not answer makes the answer partial: 503, so that a dashboard does not show zero use.
  co_await down.respond_with_body(json_head(complete ? 200 : 503), body, ec);
}

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
  } else if (req.path == "/quota") {
    co_await quota_usage(ex, down);
  } else if (req.path == "/metrics") {
    ResponseHead h;
    h.headers.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    h.headers.add("Cache-Control", "no-store");
    co_await down.respond_with_body(std::move(h), Metrics::instance().render_prometheus(), ec);
  } else {
    co_await down.respond(404, "not_found", "admin endpoints: /health, /ready, /stats, /metrics, /quota?tenant=NAME", {}, ec);
  }
}

}  // namespace obsgw::detail
