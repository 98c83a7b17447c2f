#include "obsgw/transport.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace obsgw {
namespace {

using asio::ip::tcp;

// A connected loopback pair whose writer has a small send buffer, so that the kernel takes only part of a large
// write (the reader's buffer keeps its default: a small window would make the transfer crawl on delayed ACKs).
struct Pair {
  tcp::socket writer, reader;
};

Pair connected_pair(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket writer(io), reader(io);
  writer.connect(acceptor.local_endpoint());
  acceptor.accept(reader);
  writer.set_option(asio::socket_base::send_buffer_size(4096));
  return {std::move(writer), std::move(reader)};
}

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

std::string concat(const std::array<std::string, 4>& pieces, std::size_t skip = 0) {
  return (pieces[0] + pieces[1] + pieces[2] + pieces[3]).substr(skip);
}

std::array<asio::const_buffer, 4> buffers_of(const std::array<std::string, 4>& p) {
  return {asio::buffer(p[0]), asio::buffer(p[1]), asio::buffer(p[2]), asio::buffer(p[3])};
}

// Reads `n` bytes from `reader` while `write` runs; returns what arrived. Bounded in time: bytes that never
// come (a write that skipped too much) fail the test instead of hanging it.
template <class Write>
std::string transfer(asio::io_context& io, tcp::socket& reader, std::size_t n, Write write) {
  std::string got(n, '\0');
  std::error_code read_ec;
  bool read_done = false;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await asio::async_read(reader, asio::buffer(got), asio::redirect_error(asio::use_awaitable, read_ec));
    read_done = true;
  }, asio::detached);
  asio::co_spawn(io, write, asio::detached);
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(read_done) << "the reader did not get all " << n << " bytes within 10 s";
  EXPECT_FALSE(read_ec) << read_ec.message();
  if (!read_done) {
    std::error_code ignored;
    reader.close(ignored);
    io.run_for(std::chrono::seconds(1));  // the read completes (aborted) before its buffer goes
  }
  return got;
}

TEST(Transport, WriteNowTakesASmallGatherAtOnce) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(w));
  const std::array<std::string, 4> pieces{"HTTP/1.1 200 OK\r\n\r\n", "", "hello", " world"};
  const auto bufs = buffers_of(pieces);
  std::error_code ec;
  EXPECT_EQ(t.write_now(bufs, ec), concat(pieces).size());
  EXPECT_FALSE(ec);
  std::string got(concat(pieces).size(), '\0');
  asio::read(r, asio::buffer(got));
  EXPECT_EQ(got, concat(pieces));
}

// write_all_now() says whether anything is left to await, and where write_rest() would go on.
TEST(Transport, WriteAllNowSaysWhatIsLeft) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(w));
  const std::array<std::string, 4> small{"a", "", "bc", "d"};
  std::size_t sent = 99;
  std::error_code ec;
  EXPECT_TRUE(t.write_all_now(buffers_of(small), sent, ec));
  EXPECT_EQ(sent, 4u);
  const std::array<std::string, 4> large{pattern(1000, 9), "", pattern(400 * 1024, 10), ""};
  EXPECT_FALSE(t.write_all_now(buffers_of(large), sent, ec));
  EXPECT_FALSE(ec);
  EXPECT_LT(sent, concat(large).size());
}

// The kernel takes part of a large gathered write; write_rest sends exactly the rest, in order, while the
// reader drains the socket.
TEST(Transport, PartialWriteThenRestArrivesIntact) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(w));
  const std::array<std::string, 4> pieces{pattern(100, 1), "", pattern(300 * 1024, 2), pattern(50 * 1024, 3)};
  const auto bufs = buffers_of(pieces);
  const std::size_t total = concat(pieces).size();
  std::error_code ec;
  const std::size_t sent = t.write_now(bufs, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_GT(sent, 0u);
  ASSERT_LT(sent, total);  // the small send buffer cannot take 350 KB
  std::error_code rest_ec;
  std::string got = transfer(io, r, total, [&]() -> asio::awaitable<void> {
    co_await t.write_rest(bufs, sent, rest_ec);
  });
  EXPECT_FALSE(rest_ec) << rest_ec.message();
  EXPECT_EQ(got, concat(pieces));
}

// What write_now took may end anywhere: inside the first buffer, exactly at a boundary, inside a later one.
TEST(Transport, WriteRestSkipsExactlyWhatWasSent) {
  const std::array<std::string, 4> pieces{pattern(100, 4), "", pattern(20000, 5), pattern(7, 6)};
  for (std::size_t skip : {std::size_t{0}, std::size_t{37}, std::size_t{100}, std::size_t{101}, std::size_t{20099},
                           std::size_t{20100}, std::size_t{20106}}) {
    asio::io_context io;
    auto [w, r] = connected_pair(io);
    Transport t(std::move(w));
    const auto bufs = buffers_of(pieces);
    const std::size_t expected = concat(pieces).size() - skip;
    std::error_code ec;
    std::string got = transfer(io, r, expected, [&]() -> asio::awaitable<void> {
      co_await t.write_rest(bufs, skip, ec);
    });
    EXPECT_FALSE(ec) << "skip " << skip << ": " << ec.message();
    EXPECT_EQ(got, concat(pieces, skip)) << "skip " << skip;
  }
}

// A socket that cannot take more reports 0 bytes and no error: the caller then awaits the rest.
TEST(Transport, WriteNowOnAFullSocketTakesNothingWithoutError) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(w));
  const std::string block = pattern(64 * 1024, 7);
  const std::array<asio::const_buffer, 1> bufs{asio::buffer(block)};
  std::error_code ec;
  std::size_t rounds = 0, last = 1;
  for (; rounds < 1000 && last > 0; ++rounds) last = t.write_now(bufs, ec);  // the reader never reads
  EXPECT_EQ(last, 0u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_LT(rounds, 1000u);
}

// A peer that went away is an error of the write, not a signal (MSG_NOSIGNAL) and not "0 bytes".
TEST(Transport, WriteNowToAClosedPeerFails) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(w));
  const std::string unread = "unread";
  asio::write(t.socket(), asio::buffer(unread));
  r.close();  // closing with unread bytes resets the connection
  const std::string block = pattern(4096, 8);
  const std::array<asio::const_buffer, 1> bufs{asio::buffer(block)};
  std::error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) t.write_now(bufs, ec);
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe) << ec.message();
}


// Starts t.wait_readable(); `woke` turns true when it completes, with its error in `ec`.
void start_wait(asio::io_context& io, Transport& t, bool& woke, std::error_code& ec) {
  woke = false;
  asio::co_spawn(io, [&t, &woke, &ec]() -> asio::awaitable<void> {
    co_await t.wait_readable(ec);
    woke = true;
  }, asio::detached);
}

// The wait an idle keep-alive connection uses: no buffer while waiting, then a read that never waits.
TEST(Transport, WaitReadableThenReadNow) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(r));
  std::array<char, 64> buf{};
  std::error_code ec;
  EXPECT_EQ(t.read_now(asio::buffer(buf), ec), 0u);  // nothing has arrived: no bytes, no error, no wait
  EXPECT_FALSE(ec) << ec.message();

  bool woke = false;
  std::error_code wait_ec;
  start_wait(io, t, woke, wait_ec);
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(woke) << "the wait completed with nothing to read";
  asio::write(w, asio::buffer(std::string("GET / HTTP/1.1\r\n")));
  io.restart();
  io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(woke);
  EXPECT_FALSE(wait_ec) << wait_ec.message();
  EXPECT_EQ(std::string(buf.data(), t.read_now(asio::buffer(buf), ec)), "GET / HTTP/1.1\r\n");
  EXPECT_FALSE(ec);

  w.close();  // the end of the stream: readable, and read_now says eof
  start_wait(io, t, woke, wait_ec);
  io.restart();
  io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(woke);
  EXPECT_EQ(t.read_now(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::eof);
}

// A cancelled wait (an idle timeout, a drain) completes with operation_aborted.
TEST(Transport, WaitReadableIsCancelled) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  Transport t(std::move(r));
  bool woke = false;
  std::error_code wait_ec;
  start_wait(io, t, woke, wait_ec);
  io.run_for(std::chrono::milliseconds(20));
  t.cancel();
  io.restart();
  io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(woke);
  EXPECT_EQ(wait_ec, asio::error::operation_aborted);
}

// TLS has no readiness that shows decrypted bytes: both calls refuse rather than mislead.
TEST(Transport, WaitReadableAndReadNowAreForPlainTcpOnly) {
  asio::io_context io;
  auto [w, r] = connected_pair(io);
  asio::ssl::context tls(asio::ssl::context::tls_client);
  Transport t(std::move(r), tls);
  asio::write(w, asio::buffer(std::string("bytes")));
  std::array<char, 16> buf{};
  std::error_code ec;
  EXPECT_EQ(t.read_now(asio::buffer(buf), ec), 0u);
  EXPECT_EQ(ec, asio::error::operation_not_supported);
  std::error_code wait_ec;
  bool woke = false;
  start_wait(io, t, woke, wait_ec);
  io.run_for(std::chrono::seconds(5));
  ASSERT_TRUE(woke);
  EXPECT_EQ(wait_ec, asio::error::operation_not_supported);
}

}  // namespace
}  // namespace obsgw
