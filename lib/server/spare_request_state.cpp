#include "server/spare_request_state.hpp"

#include <utility>

#include "util/spare_pool.hpp"

namespace obsgw::detail {

namespace {

struct RequestState {
  RequestHead head;
  std::string response_head;
};

// A state is kept only while it is of an ordinary size: a client that sent a head near the size limit (tens of KB)
// must not leave that much memory in the spares after its connection is gone. So 1,024 spares hold at most about
// 14 MB, and only ever after that many requests were in flight at once on the thread.
constexpr std::size_t kMaxSpare = 1024;
constexpr std::size_t kMaxKeptHeadBytes = 8 * 1024;
constexpr std::size_t kMaxKeptResponseHeadBytes = 4 * 1024;

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
  // taken instead of one with memory. (Its response head is empty too: nothing was answered.)
  if (head.method.empty() && head.headers.byte_size() == 0) return;
  RequestState s{std::move(head), std::move(response_head)};
  head = RequestHead{};
  response_head = std::string{};
  // Header bytes in use now: the arena's capacity is at most about twice that.
  const std::size_t head_bytes = s.head.headers.byte_size() + s.head.path.capacity() + s.head.query.capacity() +
                                 s.head.authority.capacity() + s.head.method.capacity();
  if (head_bytes > kMaxKeptHeadBytes || s.response_head.capacity() > kMaxKeptResponseHeadBytes) return;
  s.head.clear();
  s.response_head.clear();
  t_spares.give_back(std::move(s));
}

void SpareRequestState::trim() noexcept { t_spares.trim(); }

}  // namespace obsgw::detail
