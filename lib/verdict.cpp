#include "obsgw/verdict.hpp"

#include "util/json_escape.hpp"

namespace obsgw {

Verdict Verdict::reject(int status, std::string_view code, std::string_view message) {
  Verdict v(Kind::reject);
  v.rejection_ = std::make_unique<Rejection>(Rejection{status, std::string(code), std::string(message), {}, {}});
  return v;
}

Verdict& Verdict::with_header(std::string_view name, std::string_view value) & {
  if (rejection_) rejection_->headers.push_back(HeaderField{std::string(name), std::string(value)});
  return *this;
}

Verdict&& Verdict::with_header(std::string_view name, std::string_view value) && {
  with_header(name, value);
  return std::move(*this);
}

Verdict& Verdict::with_detail(std::string_view name, std::string_view value) & {
  if (rejection_) {
    std::string json;
    util::append_json_string(json, value);
    rejection_->details.push_back({std::string(name), std::move(json)});
  }
  return *this;
}

Verdict&& Verdict::with_detail(std::string_view name, std::string_view value) && {
  with_detail(name, value);
  return std::move(*this);
}

Verdict& Verdict::with_detail(std::string_view name, long long value) & {
  if (rejection_) rejection_->details.push_back({std::string(name), std::to_string(value)});
  return *this;
}

Verdict&& Verdict::with_detail(std::string_view name, long long value) && {
  with_detail(name, value);
  return std::move(*this);
}

}  // namespace obsgw
