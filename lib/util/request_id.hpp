#pragma once
// Request ids: a client's X-Request-Id is kept when it is short and plain; otherwise the gateway makes one.

#include <string>
#include <string_view>

namespace obsgw::util {

// 1..128 characters of [A-Za-z0-9._:-]
bool is_valid_request_id(std::string_view id) noexcept;
// 32 random hex digits from a per-thread generator (not for secrets).
std::string generate_request_id();

}  // namespace obsgw::util
