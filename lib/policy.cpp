#include "obsgw/policy.hpp"

namespace obsgw {

const char* to_string(Phase p) noexcept {
  switch (p) {
    case Phase::admit: return "admit";
    case Phase::authenticate: return "authenticate";
    case Phase::authorize: return "authorize";
    case Phase::resolve_tenant: return "resolve_tenant";
    case Phase::limit: return "limit";
    case Phase::transform: return "transform";
    case Phase::sign: return "sign";
  }
  return "unknown";
}

asio::awaitable<Verdict> Policy::on_request_async(Exchange&) const {
  // A policy that suspends must override this; reaching here is a bug in that policy.
  co_return Verdict::reject(500, "internal_error", "policy suspended without an asynchronous step");
}

}  // namespace obsgw
