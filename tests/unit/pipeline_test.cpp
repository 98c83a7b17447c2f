// The request pipeline, embedded in-process: policies that decide inline and after suspending, rejections,
// failures, body buffering and phase order, against a local Forwarder.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "obsgw/obsgw.hpp"

namespace obsgw {
namespace {

using ::testing::HasSubstr;

// Answers locally with what reached it: the request line, headers and body.
class EchoForwarder final : public Forwarder {
 public:
  std::string_view name() const noexcept override { return "echo"; }
  asio::awaitable<void> forward(Exchange& ex, Downstream& down) const override {
    std::error_code ec;
    std::string body;
    if (const std::string* b = ex.buffered_body()) body = *b;
    while (!down.body_complete()) {
      auto piece = co_await down.read_body(ec);
      if (ec) co_return;
      body.append(piece);
    }
    std::string text = ex.request().method + " " + ex.request().target() + "\n";
    for (const auto& f : ex.request().headers) text.append(f.name).append(": ").append(f.value).append("\n");
    text += "\n" + body;
    ResponseHead head;
    head.framing = BodyFraming::content_length;
    head.content_length = text.size();
    head.headers.add("Content-Type", "text/plain");
    co_await down.write_head(head, ec);
    co_await down.write_body(text, ec);
    co_await down.finish(ec);
  }
};

// Records the order in which policies ran, in a header the echo shows.
class TracePolicy : public Policy {
 public:
  TracePolicy(Phase p, std::string n) : phase_(p), name_(std::move(n)) {}
  Phase phase() const noexcept override { return phase_; }
  std::string_view name() const noexcept override { return name_; }
  Verdict on_request(Exchange& ex) const override {
    ex.request().headers.add("X-Trace", name_);
    return Verdict::proceed();
  }
  void on_complete(const Exchange&) const noexcept override { ++completed; }
  mutable std::atomic<int> completed{0};

 private:
  Phase phase_;
  std::string name_;
};

// Decides only after asynchronous work (a timer standing in for a key fetch or a Redis round trip).
class SlowAuth final : public Authenticator {
 public:
  explicit SlowAuth(bool allow) : allow_(allow) {}
  std::string_view name() const noexcept override { return "slow-auth"; }
  Verdict on_request(Exchange& ex) const override {
    if (ex.request().headers.get("x-cached")) {  // the inline path: decided from local state
      auto id = std::make_shared<Identity>();
      id->method = "cached";
      ex.identity = id;
      return Verdict::proceed();
    }
    return Verdict::suspend();
  }
  asio::awaitable<Verdict> on_request_async(Exchange& ex) const override {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
    co_await t.async_wait(asio::use_awaitable);
    ++async_calls;
    if (!allow_)
      co_return Verdict::reject(401, "invalid_token", "token rejected after lookup")
          .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
    auto id = std::make_shared<Identity>();
    id->method = "fetched";
    ex.identity = id;
    ex.request().headers.set("X-Identity", ex.identity->method);
    co_return Verdict::proceed();
  }
  mutable std::atomic<int> async_calls{0};

 private:
  bool allow_;
};

class Throwing final : public Policy {
 public:
  Phase phase() const noexcept override { return Phase::limit; }
  std::string_view name() const noexcept override { return "throwing"; }
  Verdict on_request(Exchange&) const override { throw std::runtime_error("boom"); }
};

// Needs the whole body, refuses bodies containing "forbidden".
class BodyInspector final : public Policy {
 public:
  Phase phase() const noexcept override { return Phase::limit; }
  std::string_view name() const noexcept override { return "inspector"; }
  std::size_t body_limit() const noexcept override { return 64; }
  Verdict on_request(Exchange& ex) const override {
    if (ex.buffered_body()->find("forbidden") != std::string::npos)
      return Verdict::reject(422, "forbidden_content", "body contains a forbidden word");
    return Verdict::proceed();
  }
};

// Sends one request (with Connection: close) to 127.0.0.1:`port` and returns the whole response.
std::string round_trip(std::uint16_t port, const std::string& head_and_body) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(s, asio::buffer(head_and_body));
  std::string out;
  std::error_code ec;
  char buf[4096];
  while (true) {
    std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    trace_auth = std::make_shared<TracePolicy>(Phase::authenticate, "auth");
    trace_sign = std::make_shared<TracePolicy>(Phase::sign, "sign");
    trace_transform = std::make_shared<TracePolicy>(Phase::transform, "transform");
    allow = std::make_shared<SlowAuth>(true);
    deny = std::make_shared<SlowAuth>(false);

    GatewayBuilder b(2);
    b.upstream(std::make_shared<EchoForwarder>());
    // Listed out of phase order on purpose: the pipeline runs them auth → transform → sign.
    b.route("ordered").path("/ordered").to("echo").use(trace_sign).use(trace_transform).use(trace_auth);
    b.route("allow").path("/allow").to("echo").use(allow);
    b.route("deny").path("/deny").to("echo").use(deny).use(std::make_shared<HeaderTransform>(
        HeaderEdits{}, HeaderEdits{{}, {}, {HeaderField{"X-Response-Policy", "ran"}}}));
    b.route("throw").path("/throw").to("echo").use(std::make_shared<Throwing>());
    b.route("inspect").path("/inspect").to("echo").use(std::make_shared<BodyInspector>());
    b.route("push").path("/push").methods({"POST"}).to("echo");
    b.route("rewrite").path_prefix("/old").rewrite_prefix("/new").to("echo");

    ServerOptions options;
    options.listeners.push_back(ListenerOptions{"127.0.0.1", 0});
    options.threads = 2;
    logger = std::make_shared<Logger>(-1, LogLevel::off);
    server = std::make_unique<Server>(options, b.build(), logger);
    server->start();
    port = server->endpoints().at(0).port();
  }
  void TearDown() override {
    server->drain(std::chrono::milliseconds(1000));
    server->wait();
  }

  std::string request(const std::string& head_and_body) { return round_trip(port, head_and_body); }
  std::string get(const std::string& path, const std::string& extra = "") {
    return request("GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + "\r\n");
  }

  std::shared_ptr<TracePolicy> trace_auth, trace_sign, trace_transform;
  std::shared_ptr<SlowAuth> allow, deny;
  std::shared_ptr<Logger> logger;
  std::unique_ptr<Server> server;
  std::uint16_t port = 0;
};

TEST_F(PipelineTest, PoliciesRunInPhaseOrderAndCompleteOnce) {
  auto r = get("/ordered");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
  auto first = r.find("X-Trace: auth"), second = r.find("X-Trace: transform"), third = r.find("X-Trace: sign");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  ASSERT_NE(third, std::string::npos);
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  server->drain(std::chrono::milliseconds(1000));  // completion hooks have run once the connection is gone
  EXPECT_EQ(trace_auth->completed, 1);
  EXPECT_EQ(trace_sign->completed, 1);
}

TEST_F(PipelineTest, InlineDecisionSkipsTheAsyncStep) {
  auto r = get("/allow", "X-Cached: 1\r\n");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_EQ(allow->async_calls, 0);
}

TEST_F(PipelineTest, SuspendedPolicyProceedsAfterAsyncWork) {
  auto r = get("/allow");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(r, HasSubstr("X-Identity: fetched"));
  EXPECT_EQ(allow->async_calls, 1);
}

TEST_F(PipelineTest, SuspendedPolicyRejectsWithJsonAndHeaders) {
  auto r = get("/deny");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 401 Unauthorized"));
  EXPECT_THAT(r, HasSubstr("WWW-Authenticate: Bearer error=\"invalid_token\""));
  EXPECT_THAT(r, HasSubstr("Content-Type: application/json"));
  EXPECT_THAT(r, HasSubstr("{\"error\":\"invalid_token\",\"message\":\"token rejected after lookup\",\"request_id\":"));
  EXPECT_THAT(r, HasSubstr("X-Response-Policy: ran"));  // response policies also see rejections
  EXPECT_THAT(r, ::testing::Not(HasSubstr("GET /deny")));  // never forwarded
}

TEST_F(PipelineTest, ThrowingPolicyBecomes500) {
  auto r = get("/throw");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 500 Internal Server Error"));
  EXPECT_THAT(r, HasSubstr("\"error\":\"internal_error\""));
}

TEST_F(PipelineTest, BufferedBodyIsInspectedAndForwarded) {
  auto ok = request("POST /inspect HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_THAT(ok, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(ok, HasSubstr("\n\nhello"));
  auto chunked = request("POST /inspect HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "3\r\nfor\r\n6\r\nbidden\r\n0\r\n\r\n");
  EXPECT_THAT(chunked, HasSubstr("HTTP/1.1 422"));
  auto big = request("POST /inspect HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 65\r\n\r\n" + std::string(65, 'x'));
  EXPECT_THAT(big, HasSubstr("HTTP/1.1 413"));
}

TEST_F(PipelineTest, NoRouteAndWrongMethod) {
  auto r = get("/nowhere");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 404 Not Found"));
  EXPECT_THAT(r, HasSubstr("\"error\":\"no_route\""));
  auto m = get("/push");
  EXPECT_THAT(m, HasSubstr("HTTP/1.1 405 Method Not Allowed"));
  EXPECT_THAT(m, HasSubstr("Allow: POST"));
}

TEST_F(PipelineTest, RewritePrefix) {
  EXPECT_THAT(get("/old/a/b?x=1"), HasSubstr("GET /new/a/b?x=1"));
  EXPECT_THAT(get("/old"), HasSubstr("GET /new"));
}

TEST_F(PipelineTest, RequestIdKeptOrGenerated) {
  EXPECT_THAT(get("/push", "X-Request-Id: my-id-1\r\n"), HasSubstr("X-Request-Id: my-id-1"));
  auto generated = get("/ordered", "X-Request-Id: bad id!\r\n");
  EXPECT_THAT(generated, ::testing::Not(HasSubstr("bad id!")));
  EXPECT_THAT(generated, ::testing::ContainsRegex("X-Request-Id: [0-9a-f]{32}"));
}

TEST_F(PipelineTest, ReloadSwapsRoutesForNewRequests) {
  GatewayBuilder b(2);
  b.upstream(std::make_shared<EchoForwarder>());
  b.route("only").path("/only").to("echo");
  server->reload(b.build());
  // The reload is applied on each io thread asynchronously; poll briefly.
  std::string r;
  for (int i = 0; i < 100; ++i) {
    r = get("/only");
    if (r.find("200 OK") != std::string::npos && get("/ordered").find("404") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(get("/ordered"), HasSubstr("HTTP/1.1 404"));
}

// A policy's edits reach the real HTTP forwarder, which re-checks what the parser did not: a value written by a
// policy that would split the request is refused with a 500 before anything is sent, while fields the parser
// validated stay forwarded as they are when a policy removes another field in front of them.
class HeaderWriter final : public Policy {
 public:
  Phase phase() const noexcept override { return Phase::transform; }
  std::string_view name() const noexcept override { return "header-writer"; }
  Verdict on_request(Exchange& ex) const override {
    ex.request().headers.remove("x-early");
    if (ex.request().path == "/inject") ex.request().headers.add("X-Bad", "a\r\nInjected: 1");
    // Replacing a field the parser validated, in its place: the new value is checked all the same.
    if (ex.request().path == "/inject-replace") ex.request().headers.set("Authorization", "a\r\nInjected: 2");
    return Verdict::proceed();
  }
};

TEST(HttpForwarderChecks, PolicyWrittenFieldsAreCheckedBeforeSending) {
  // The upstream: answers every request on every connection with 200 and keeps what it received.
  asio::io_context upstream_io;
  asio::ip::tcp::acceptor acceptor(upstream_io, {asio::ip::make_address("127.0.0.1"), 0});
  std::mutex received_mutex;
  std::string received;
  auto serve = [&](asio::ip::tcp::socket s) -> asio::awaitable<void> {
    std::string buf;
    char chunk[4096];
    for (;;) {
      std::error_code ec;
      std::size_t n = co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      buf.append(chunk, n);
      for (auto end = buf.find("\r\n\r\n"); end != std::string::npos; end = buf.find("\r\n\r\n")) {
        {
          std::lock_guard lock(received_mutex);
          received += buf.substr(0, end + 4);
        }
        buf.erase(0, end + 4);
        co_await asio::async_write(s, asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
      }
    }
  };
  asio::co_spawn(upstream_io, [&]() -> asio::awaitable<void> {
    for (;;) {
      std::error_code ec;
      asio::ip::tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(upstream_io, serve(std::move(s)), asio::detached);
    }
  }, asio::detached);
  UpstreamOptions up;
  up.name = "raw";
  up.url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  std::thread upstream_thread([&] { upstream_io.run(); });
  struct StopUpstream {  // also when an assertion or exception leaves the test early
    asio::io_context& io;
    asio::ip::tcp::acceptor& acceptor;
    std::thread& thread;
    ~StopUpstream() {
      asio::post(io, [this] {
        acceptor.close();
        io.stop();
      });
      thread.join();
    }
  } stop_upstream{upstream_io, acceptor, upstream_thread};
  GatewayBuilder b(1);
  b.upstream(make_http_forwarder(up, 1));
  b.route("all").path_prefix("/").to("raw").use(std::make_shared<HeaderWriter>());
  ServerOptions options;
  options.listeners.push_back(ListenerOptions{"127.0.0.1", 0});
  options.threads = 1;
  Server server(options, b.build(), std::make_shared<Logger>(-1, LogLevel::off));
  server.start();
  const std::uint16_t port = server.endpoints().at(0).port();
  auto send = [&](const std::string& path) {
    return round_trip(port, "GET " + path + " HTTP/1.1\r\nHost: t\r\nX-Early: 1\r\nAuthorization: Bearer abc.def\r\n"
                            "Connection: close\r\n\r\n");
  };

  EXPECT_THAT(send("/ok"), HasSubstr("HTTP/1.1 200 OK"));
  for (const char* path : {"/inject", "/inject-replace"}) {
    const auto refused = send(path);
    EXPECT_THAT(refused, HasSubstr("HTTP/1.1 500")) << path;
    EXPECT_THAT(refused, HasSubstr("\"error\":\"invalid_upstream_request\"")) << path;
  }
  EXPECT_THAT(send("/ok2"), HasSubstr("HTTP/1.1 200 OK"));  // the gateway and its pool carry on

  server.drain(std::chrono::milliseconds(1000));
  server.wait();
  std::lock_guard lock(received_mutex);
  EXPECT_THAT(received, HasSubstr("GET /ok HTTP/1.1\r\n"));
  EXPECT_THAT(received, HasSubstr("GET /ok2 HTTP/1.1\r\n"));
  EXPECT_THAT(received, HasSubstr("\r\nAuthorization: Bearer abc.def\r\n"));
  EXPECT_THAT(received, ::testing::Not(HasSubstr("X-Early")));
  EXPECT_THAT(received, ::testing::Not(HasSubstr("/inject")));
  EXPECT_THAT(received, ::testing::Not(HasSubstr("Injected")));
}

}  // namespace
}  // namespace obsgw
