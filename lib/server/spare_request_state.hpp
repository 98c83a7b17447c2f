#pragma once

#include <string>

#include "obsgw/http_message.hpp"

namespace obsgw::detail {

// What a client connection needs only while it serves a request: the parsed request head (its header list alone
// takes a kilobyte and more when a bearer token comes with it) and the serialized response head. Between requests a
// connection gives both to its io thread's spares, so that ten thousand idle keep-alive connections do not each keep
// the memory of their last request, while a busy connection takes them back without malloc. The spares follow the
// load like SpareBuffers (util::SparePool): trim() frees those unused for a while.
class SpareRequestState {
 public:
  // Moves a spare head and response-head string into `head` and `response_head` when the thread has them, cleared but
  // with their memory; otherwise leaves both as they are.
  static void take(RequestHead& head, std::string& response_head) noexcept;
  // Keeps the memory of `head` and `response_head` for a later take() on this thread, or frees it when the spares
  // are at their bound or the state is unusually large (a head near the size limit). Both are left empty, owning no
  // memory (a head that never held a request is left as it is: it owns none).
  static void give_back(RequestHead& head, std::string& response_head) noexcept;
  // Frees the spares no take() needed since the previous trim. Called by each io thread on its trim timer.
  static void trim() noexcept;
};

}  // namespace obsgw::detail
