#pragma once
/// @file
/// A policy that adds, sets and removes request and response headers.

#include <memory>
#include <string>
#include <vector>

#include "obsgw/headers.hpp"
#include "obsgw/policy.hpp"

namespace obsgw {

struct HeaderEdits {
  std::vector<std::string> remove;  ///< removed first
  std::vector<HeaderField> set;     ///< then set (replacing any existing)
  std::vector<HeaderField> add;     ///< then appended

  bool empty() const noexcept { return remove.empty() && set.empty() && add.empty(); }
  void apply(Headers& headers) const;
};

class HeaderTransform final : public Policy {
 public:
  HeaderTransform(HeaderEdits request, HeaderEdits response);
  Phase phase() const noexcept override { return Phase::transform; }
  std::string_view name() const noexcept override { return "headers"; }
  Verdict on_request(Exchange& ex) const override;
  void on_response(Exchange& ex, ResponseHead& head) const override;

 private:
  HeaderEdits request_;
  HeaderEdits response_;
};

}  // namespace obsgw
