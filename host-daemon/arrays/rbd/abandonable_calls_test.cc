#include "host-daemon/arrays/rbd/abandonable_calls.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace qb::arrays::rbd {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

TEST(AbandonableCallsTest, ReturnsTheResultOfACallThatEndsInTime) {
  AbandonableCalls calls;
  Status status = calls.Run(
      "k1", "ok call", [] { return Status::Ok(); }, Clock::now() + 60s);
  EXPECT_TRUE(status.ok()) << status.ToString();
  status = calls.Run(
      "k1", "failing call", [] { return Error(Code::kArrayError, "boom"); }, Clock::now() + 60s);
  EXPECT_EQ(status.code(), Code::kArrayError);
  EXPECT_EQ(status.message(), "boom");
}

TEST(AbandonableCallsTest, StopsWaitingAtTheDeadlineAndTheCallGoesOn) {
  AbandonableCalls calls;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto finished = std::make_shared<std::atomic<bool>>(false);
  // The call blocks until released: only the deadline can end the wait.
  Status status = calls.Run(
      "stuck", "stuck call",
      [released, finished] {
        released.wait();
        finished->store(true);
        return Status::Ok();
      },
      Clock::now() + 50ms);
  EXPECT_EQ(status.code(), Code::kTimeout);
  EXPECT_NE(status.message().find("stuck call"), std::string::npos);
  EXPECT_EQ(calls.Running(), 1u);
  EXPECT_FALSE(calls.WaitForKey("stuck", Clock::now()));
  EXPECT_TRUE(calls.WaitForKey("other key", Clock::now()));

  release.set_value();
  EXPECT_TRUE(calls.WaitForKey("stuck", Clock::now() + 60s));
  EXPECT_TRUE(finished->load());
  EXPECT_EQ(calls.Running(), 0u);
}

TEST(AbandonableCallsTest, PastDeadlineStillRunsButDoesNotWait) {
  AbandonableCalls calls;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Status status = calls.Run(
      "k", "late call",
      [released] {
        released.wait();
        return Status::Ok();
      },
      Clock::now() - 1s);
  EXPECT_EQ(status.code(), Code::kTimeout);
  release.set_value();
  // The destructor joins the call.
}

TEST(AbandonableCallsTest, DestructorWaitsForRunningCalls) {
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::thread releaser;
  {
    AbandonableCalls calls;
    Status status = calls.Run(
        "k", "slow call",
        [released, finished] {
          released.wait();
          finished->store(true);
          return Status::Ok();
        },
        Clock::now());
    EXPECT_EQ(status.code(), Code::kTimeout);
    releaser = std::thread([&release] { release.set_value(); });
  }
  EXPECT_TRUE(finished->load());
  releaser.join();
}

TEST(AbandonableCallsTest, AnExceptionBecomesAnInternalError) {
  AbandonableCalls calls;
  Status status = calls.Run(
      "k", "throwing call", []() -> Status { throw std::runtime_error("bug"); },
      Clock::now() + 60s);
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("bug"), std::string::npos);
}

}  // namespace
}  // namespace qb::arrays::rbd
