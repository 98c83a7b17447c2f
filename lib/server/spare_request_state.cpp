#include "server/spare_request_state.hpp"

#include <utility>

#include "util/spare_pool.hpp"

namespace obsgw::detail {

namespace {

struct RequestState {
  RequestHead head;
  std::string response_head;
};

// As many as head buffers (util::SpareBuffers): a few MB at most, only ever after that many requests in flight.
constexpr std::size_t kMaxSpare = 4096;

thread_local util::SparePool<RequestState> t_spares(kMaxSpare);

}  // namespace

void SpareRequestState::take(RequestHead& head, std::string& response_head) noexcept {
  RequestState s;
  if (!t_spares.take(s)) return;
  head = std::move(s.head);
  response_head = std::move(s.response_head);
}

void SpareRequestState::give_back(RequestHead& head, std::string& response_head) noexcept {
  // A connection that has not parsed a request yet has nothing worth keeping: an empty state kept here would be
  // taken instead of one with memory.
  if (head.method.empty() && head.headers.byte_size() == 0) return;
  RequestState s{std::move(head), std::move(response_head)};
  head = RequestHead{};
  response_head = std::string{};
  s.head.clear();
  s.response_head.clear();
  t_spares.give_back(std::move(s));
}

void SpareRequestState::trim() noexcept { t_spares.trim(); }

}  // namespace obsgw::detail
