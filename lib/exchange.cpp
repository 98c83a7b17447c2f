#include "obsgw/exchange.hpp"

namespace obsgw {

Exchange::Exchange(RequestHead request, ConnectionInfo connection)
    : request_(std::move(request)), connection_(std::move(connection)) {
  if (connection_.peer_ip.empty()) {
    auto addr = connection_.peer_address;
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    connection_.peer_ip = addr.to_string();
  }
  client_ip_ = connection_.peer_ip;
}

}  // namespace obsgw
