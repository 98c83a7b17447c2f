#include "server/proxy_handler.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <optional>

#include <fmt/format.h>

#include "net/client_address.hpp"
#include "proxy/hop_by_hop.hpp"
#include "server/active_clients.hpp"
#include "server/errors.hpp"
#include "server/metrics.hpp"
#include "util/decimal.hpp"
#include "util/json_escape.hpp"
#include "util/log_timestamp.hpp"
#include "util/request_id.hpp"

namespace obsgw::detail {

asio::awaitable<void> ProxyHandler::handle(Exchange& ex, ClientConnection& down) {
  std::shared_ptr<const Gateway> gw = gateway_;  // this exchange finishes on the snapshot it started with
  RequestHead& req = ex.request();

  // The client is resolved before hop-by-hop removal: a proxy relaying `Connection: X-Forwarded-For` must not
  // erase the chain and make itself the client.
  if (auto client = net::resolve_client(gw->options().trusted_proxies, ex.connection().peer_address, req.headers))
    ex.set_client(client->address, std::move(client->forwarded_for));
  note_client(ex.client_address());
  // Hop-by-hop headers go next, before any policy adds headers: a client must not be able to name a
  // gateway-set header in Connection and have the proxy strip it.
  proxy::remove_hop_by_hop(req.headers, req.websocket_upgrade);

  if (auto id = req.headers.get("x-request-id"); id && util::is_valid_request_id(*id)) ex.set_request_id(std::string(*id));
  else ex.set_request_id(util::generate_request_id());
  req.headers.set("X-Request-Id", ex.request_id());

  std::error_code ec;
  const Router& router = gw->router();
  auto match = router.match(router.uses_hosts() ? req.host() : std::string(), req.path, req.method);
  if (!match.route) {
    if (!match.allow.empty()) {
      Metrics::instance().rejections.add("method_not_allowed");
      ex.outcome.rejected_by = "method_not_allowed";
      std::vector<HeaderField> allow{HeaderField{"Allow", match.allow}};  // built outside co_await: GCC 12 bug
      co_await down.respond(405, "method_not_allowed", "this route does not accept the request's method", allow, ec);
    } else {
      Metrics::instance().rejections.add("no_route");
      ex.outcome.rejected_by = "no_route";
      co_await down.respond(404, "no_route", "no route matches this host, path and method", {}, ec);
    }
    complete(*gw, ex, 0);
    co_return;
  }
  const Route& route = *match.route;
  ex.set_route(&route);
  // X-Gateway-* headers are the gateway's own: a client's copy never reaches an upstream (a captured signed
  // request replayed through the gateway, a forged region). Only a route that verifies signed clients (the hmac
  // Authenticator owns the signature headers) lets its policies see them; it removes them itself.
  req.headers.remove_if([&](const auto& f) {
    return f.name.size() > 10 && iequals(f.name.substr(0, 10), "x-gateway-") &&
           !(route.keeps_signature_headers && !iequals(f.name, "x-gateway-region"));
  });
  ex.set_region(gw->options().region);
  if (!gw->options().region.empty()) req.headers.set("X-Gateway-Region", gw->options().region);
  if (route.has_rewrite && route.match.prefix) {
    ex.keep_client_path();
    std::string rest = req.path.substr(std::min(route.match.path.size(), req.path.size()));
    std::string rewritten = route.rewrite_prefix;
    if (!rest.empty() && rest.front() != '/' && (rewritten.empty() || rewritten.back() != '/')) rewritten += '/';
    if (!rewritten.empty() && rewritten.back() == '/' && !rest.empty() && rest.front() == '/') rest.erase(0, 1);
    rewritten += rest;
    if (rewritten.empty() || rewritten.front() != '/') rewritten.insert(0, 1, '/');
    req.path = std::move(rewritten);
  }

  std::size_t ran = 0;
  bool answered = false;
  bool failed = false;
  std::string_view running = "forwarder";  // what was running if an exception comes (names outlive the exchange)
  try {
    for (const auto& policy : route.policies) {
      if (policy->body_limit() > 0 && !ex.buffered_body()) {
        std::optional<signing::Sha256Stream> digest;
        const bool hashed = ex.request().framing != BodyFraming::none &&  // no body: a constant
                            std::any_of(route.policies.begin(), route.policies.end(), [&](const auto& p) {
                              return p->body_limit() > 0 && p->needs_body_sha256(ex);
                            });
        if (hashed) digest.emplace();
        std::string body = co_await down.read_whole_body(route.body_limit(), ec, digest ? &*digest : nullptr);
        if (ec) {
          auto r = error_response_for(ec);
          Metrics::instance().rejections.add(r.code);
          ex.outcome.rejected_by = r.code;
          if (ec != GatewayError::client_closed) co_await down.respond(r.status, r.code, r.message, {}, ec);
          else ex.outcome.status = 499;
          answered = true;
          break;
        }
        ex.set_buffered_body(std::move(body), digest ? digest->hex_digest() : std::string());
      }
      running = policy->name();
      ++ran;
      Verdict v = policy->on_request(ex);
      if (v.suspends()) v = co_await policy->on_request_async(ex);
      if (v.rejects()) {
        const Rejection& r = v.rejection();
        Metrics::instance().rejections.add(r.code);
        ex.outcome.rejected_by = r.code;
        ex.outcome.rejecting_policy = policy.get();
        co_await down.respond(r.status, r.code, r.message, r.headers, ec, r.details);
        answered = true;
        break;
      }
    }
    running = "forwarder";
    if (!answered) co_await route.forwarder->forward(ex, down);
  } catch (const std::exception& e) {
    if (logger_->enabled(LogLevel::error))
      logger_->log(LogLevel::error, "exception in request pipeline",
                   {{"request_id", ex.request_id()}, {"route", route.name}, {"policy", running}, {"what", e.what()}});
    failed = true;
  }
  if (failed) {
    Metrics::instance().rejections.add("internal_error");
    ex.outcome.rejected_by = "internal_error";
    if (!down.head_sent()) co_await down.respond(500, "internal_error", "the gateway failed to process the request", {}, ec);
    else down.abort();
  }
  complete(*gw, ex, ran);
}

void ProxyHandler::complete(const Gateway& gw, Exchange& ex, std::size_t ran) noexcept {
  const Route* route = ex.route();
  if (route)
    for (std::size_t i = 0; i < ran && i < route->policies.size(); ++i) route->policies[i]->on_complete(ex);
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - ex.started());
  int status = ex.outcome.status ? ex.outcome.status : 499;
  bool forwarded = !ex.outcome.upstream.empty() && ex.outcome.rejected_by.empty();
  RouteCounters* counters = route && route->counters ? route->counters.get() : &Metrics::instance().unmatched();
  counters->record(status, elapsed, ex.outcome.bytes_in, ex.outcome.bytes_out, forwarded);

  if (!gw.options().access_log) return;
  try {
    // Built by hand into a buffer kept per thread: this runs for every request, and fmt's runtime format strings
    // and a fresh string cost more than the rest of the line.
    thread_local std::string line;
    line.clear();
    const auto& req = ex.request();
    line += "{\"ts\":\"";
    util::append_log_timestamp(line, std::chrono::system_clock::now());
    line += "\",\"type\":\"access\",\"request_id\":";
    util::append_json_string(line, ex.request_id());
    line += ",\"client_ip\":";
    util::append_json_string(line, ex.client_ip());
    line += ",\"method\":";
    util::append_json_string(line, req.method);
    line += ",\"path\":";
    util::append_json_string(line, req.path);
    line += ",\"route\":";
    util::append_json_string(line, route ? std::string_view(route->name) : std::string_view{});
    line += ",\"upstream\":";
    util::append_json_string(line, ex.outcome.upstream);
    line += ",\"status\":";
    util::append_decimal(line, static_cast<std::uint64_t>(status));
    line += ",\"bytes_in\":";
    util::append_decimal(line, ex.outcome.bytes_in);
    line += ",\"bytes_out\":";
    util::append_decimal(line, ex.outcome.bytes_out);
    line += ",\"duration_ms\":";  // microseconds as milliseconds with three decimals
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(elapsed.count(), 0));
    util::append_decimal(line, us / 1000);
    const char fraction[4] = {'.', static_cast<char>('0' + us / 100 % 10), static_cast<char>('0' + us / 10 % 10),
                              static_cast<char>('0' + us % 10)};
    line.append(fraction, 4);
    if (!ex.outcome.rejected_by.empty()) {
      line += ",\"error\":";
      util::append_json_string(line, ex.outcome.rejected_by);
    }
    if (ex.outcome.upstream_tries > 1) {
      line += ",\"tries\":";
      util::append_decimal(line, ex.outcome.upstream_tries);
    }
    if (!ex.tenants.empty()) {
      line += ",\"tenant\":";
      util::append_json_string(line, ex.tenants.front());
    }
    line += '}';
    logger_->write_line(line);
  } catch (...) {
    // Logging must never fail a request.
  }
}

}  // namespace obsgw::detail
