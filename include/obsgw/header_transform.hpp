#pragma once
/// @file
/// A policy that adds, sets and removes request and response headers. Values may refer to the exchange:
/// ${tenant}, ${subject}, ${client_id}, ${email}, ${claim.NAME} (a path into the verified claims), ${client_ip},
/// ${request_id}, ${route}, ${region}. A value that expands to nothing is not added (and `set` removes the header,
/// so a client's copy never stands in for it); one that would not be a valid field value is dropped likewise.

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
};

class HeaderTransform final : public Policy {
 public:
  /// Throws std::invalid_argument for an invalid or proxy-managed name, a control character or an unknown ${...}.
  HeaderTransform(HeaderEdits request, HeaderEdits response);
  ~HeaderTransform() override;
  Phase phase() const noexcept override { return Phase::transform; }
  std::string_view name() const noexcept override { return "headers"; }
  Verdict on_request(Exchange& ex) const override;
  void on_response(Exchange& ex, ResponseHead& head) const override;

 private:
  struct Compiled;
  std::unique_ptr<const Compiled> request_;
  std::unique_ptr<const Compiled> response_;
};

}  // namespace obsgw
