#include "server/spare_request_state.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace obsgw::detail {
namespace {

RequestHead parsed_head() {
  RequestHead h;
  h.method = "POST";
  h.path = "/loki/api/v1/push/a/path/longer/than/the/small/string/buffer";
  h.headers.add("Authorization", std::string(700, 't'));
  h.headers.add("X-Scope-OrgID", "tenant-1");
  h.content_length = 42;
  return h;
}

TEST(SpareRequestState, AGivenBackHeadComesBackClearedWithItsMemory) {
  std::thread([] {  // a fresh thread: its spares start empty
    RequestHead head = parsed_head();
    std::string response_head(300, 'r');
    const char* path_memory = head.path.data();
    const char* response_memory = response_head.data();
    SpareRequestState::give_back(head, response_head);
    // The connection keeps nothing while it waits.
    EXPECT_TRUE(head.method.empty());
    EXPECT_TRUE(head.headers.empty());
    EXPECT_EQ(head.headers.byte_size(), 0u);
    EXPECT_TRUE(response_head.empty());

    RequestHead next;
    std::string next_response;
    SpareRequestState::take(next, next_response);
    EXPECT_TRUE(next.method.empty());
    EXPECT_TRUE(next.path.empty());
    EXPECT_TRUE(next.headers.empty());
    EXPECT_EQ(next.content_length, 0u);
    EXPECT_TRUE(next_response.empty());
    EXPECT_EQ(next.path.data(), path_memory);  // the same memory, not a new allocation
    EXPECT_EQ(next_response.data(), response_memory);

    // Nothing left: take() leaves its arguments alone.
    RequestHead third = parsed_head();
    std::string third_response = "kept";
    SpareRequestState::take(third, third_response);
    EXPECT_EQ(third.method, "POST");
    EXPECT_EQ(third_response, "kept");
  }).join();
}

TEST(SpareRequestState, AHeadThatNeverHeldARequestIsNotKept) {
  std::thread([] {
    RequestHead fresh;
    std::string response;
    SpareRequestState::give_back(fresh, response);  // a new connection's first wait
    RequestHead target = parsed_head();
    std::string target_response = "kept";
    SpareRequestState::take(target, target_response);
    EXPECT_EQ(target.method, "POST");  // no empty spare was handed out in place of one with memory
    EXPECT_EQ(target_response, "kept");
  }).join();
}

TEST(SpareRequestState, TrimFreesWhatStayedUnused) {
  std::thread([] {
    RequestHead head = parsed_head();
    std::string response(300, 'r');
    SpareRequestState::give_back(head, response);
    SpareRequestState::trim();  // given back since the previous round: kept
    SpareRequestState::trim();  // unused since: freed
    RequestHead target = parsed_head();
    std::string target_response = "kept";
    SpareRequestState::take(target, target_response);
    EXPECT_EQ(target.method, "POST");
  }).join();
}

}  // namespace
}  // namespace obsgw::detail
