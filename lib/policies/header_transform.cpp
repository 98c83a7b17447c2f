#include "obsgw/header_transform.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "http/char_classes.hpp"
#include "policies/header_template.hpp"
#include "proxy/hop_by_hop.hpp"

namespace obsgw {

struct HeaderTransform::Compiled {
  struct Edit {
    std::string name;
    detail::HeaderTemplate value;
  };
  std::vector<std::string> remove;
  std::vector<Edit> set;
  std::vector<Edit> add;

  Compiled(const HeaderEdits& e, const char* side) : remove(e.remove) {
    auto check_name = [&](std::string_view n) {
      if (!http::is_token(n)) throw std::invalid_argument(fmt::format("{}: \"{}\" is not a valid header name", side, n));
      if (proxy::is_proxy_managed(n)) throw std::invalid_argument(fmt::format("{}: header \"{}\" is managed by the proxy", side, n));
    };
    for (const auto& n : remove) check_name(n);
    auto compile = [&](const std::vector<HeaderField>& list, std::vector<Edit>& out) {
      for (const auto& f : list) {
        check_name(f.name);
        if (!http::is_field_value(f.value) || f.value.find('\r') != std::string::npos)
          throw std::invalid_argument(fmt::format("{}: value of \"{}\" contains a control character", side, f.name));
        try {
          out.push_back({f.name, detail::HeaderTemplate(f.value)});
        } catch (const std::invalid_argument& e) {
          throw std::invalid_argument(fmt::format("{}: value of \"{}\": {}", side, f.name, e.what()));
        }
      }
    };
    compile(e.set, set);
    compile(e.add, add);
  }

  void apply(const Exchange& ex, Headers& headers) const {
    for (const auto& n : remove) headers.remove(n);
    for (const auto& e : set) {
      std::string v = e.value.expand(ex);
      if (v.empty() || !http::is_field_value(v)) headers.remove(e.name);
      else headers.set(e.name, v);
    }
    for (const auto& e : add) {
      std::string v = e.value.expand(ex);
      if (!v.empty() && http::is_field_value(v)) headers.add(e.name, v);
    }
  }
};

HeaderTransform::HeaderTransform(HeaderEdits request, HeaderEdits response)
    : request_(std::make_unique<const Compiled>(request, "request")),
      response_(std::make_unique<const Compiled>(response, "response")) {}

HeaderTransform::~HeaderTransform() = default;

Verdict HeaderTransform::on_request(Exchange& ex) const {
  request_->apply(ex, ex.request().headers);
  return Verdict::proceed();
}

void HeaderTransform::on_response(Exchange& ex, ResponseHead& head) const { response_->apply(ex, head.headers); }

}  // namespace obsgw
