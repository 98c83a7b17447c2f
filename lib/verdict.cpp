#include "obsgw/verdict.hpp"

namespace obsgw {

Verdict Verdict::reject(int status, std::string_view code, std::string_view message) {
  Verdict v(Kind::reject);
  v.rejection_ = std::make_unique<Rejection>(Rejection{status, std::string(code), std::string(message), {}});
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

}  // namespace obsgw
