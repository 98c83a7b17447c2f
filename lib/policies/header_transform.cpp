#include "obsgw/header_transform.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "http/char_classes.hpp"
#include "proxy/hop_by_hop.hpp"

namespace obsgw {

namespace {
void validate(const HeaderEdits& e, const char* side) {
  auto check_name = [&](std::string_view n) {
    if (!http::is_token(n)) throw std::invalid_argument(fmt::format("{}: \"{}\" is not a valid header name", side, n));
    if (proxy::is_proxy_managed(n)) throw std::invalid_argument(fmt::format("{}: header \"{}\" is managed by the proxy", side, n));
  };
  for (const auto& n : e.remove) check_name(n);
  for (const auto* list : {&e.set, &e.add})
    for (const auto& f : *list) {
      check_name(f.name);
      if (!http::is_field_value(f.value) || f.value.find('\r') != std::string::npos)
        throw std::invalid_argument(fmt::format("{}: value of \"{}\" contains a control character", side, f.name));
    }
}
}  // namespace

void HeaderEdits::apply(Headers& headers) const {
  for (const auto& n : remove) headers.remove(n);
  for (const auto& f : set) headers.set(f.name, f.value);
  for (const auto& f : add) headers.add(f.name, f.value);
}

HeaderTransform::HeaderTransform(HeaderEdits request, HeaderEdits response)
    : request_(std::move(request)), response_(std::move(response)) {
  validate(request_, "request");
  validate(response_, "response");
}

Verdict HeaderTransform::on_request(Exchange& ex) const {
  request_.apply(ex.request().headers);
  return Verdict::proceed();
}

void HeaderTransform::on_response(Exchange&, ResponseHead& head) const { response_.apply(head.headers); }

}  // namespace obsgw
