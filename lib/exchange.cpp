#include "obsgw/exchange.hpp"

namespace obsgw {

Exchange::Exchange(RequestHead request, ConnectionInfo connection)
    : request_(std::move(request)), connection_(std::move(connection)) {
  auto addr = connection_.peer_address;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  client_ip_ = addr.to_string();
}

}  // namespace obsgw
