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
  client_address_ = connection_.peer_address;
  if (client_address_.is_v6() && client_address_.to_v6().is_v4_mapped())
    client_address_ = asio::ip::make_address_v4(asio::ip::v4_mapped, client_address_.to_v6());
}

void Exchange::set_client(asio::ip::address address, std::string forwarded_for) {
  client_address_ = address;
  client_ip_ = address.to_string();
  forwarded_for_ = std::move(forwarded_for);
}

}  // namespace obsgw
