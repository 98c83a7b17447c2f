#pragma once
// One process-wide thread for the gateway's housekeeping I/O (fetching identity providers' keys on a schedule),
// so that none of it runs on, or waits for, an io thread. Started on first use, stopped at process exit.

#include <asio/any_io_executor.hpp>

namespace obsgw::net {

asio::any_io_executor background_executor();

// True once the loop is shutting down (process exit): objects destroyed from then on must not post to it.
bool background_stopping() noexcept;

}  // namespace obsgw::net
