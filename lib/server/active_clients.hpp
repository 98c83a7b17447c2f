#pragma once
// How many distinct clients (addresses) used the gateway in the last five minutes, for /stats. Counting exactly
// would need a shared set that every request writes to; instead each io thread keeps HyperLogLog sketches of
// one minute each (1024 one-byte registers, ±3% typical error) that only it writes, merged when /stats asks.

#include <cstdint>

#include <asio/ip/address.hpp>

namespace obsgw::detail {

void note_client(const asio::ip::address& address) noexcept;
std::uint64_t estimate_active_clients() noexcept;

}  // namespace obsgw::detail
