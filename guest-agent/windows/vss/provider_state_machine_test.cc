#include "guest-agent/windows/vss/provider_state_machine.h"

#include <gtest/gtest.h>

#include <future>

#include "guest-agent/windows/vss/in_process_hold.h"

namespace qb::agent::win {
namespace {

using namespace std::chrono_literals;
using State = ProviderStateMachine::State;

// Generous: only bounds a wait that normally ends at once.
constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

class ProviderStateMachineTest : public ::testing::Test {
 protected:
  void PrepareSet(const std::string& set) {
    ASSERT_TRUE(hold_.Arm(set).ok());
    ASSERT_EQ(provider_.BeginPrepareSnapshot(set, "\\\\?\\Volume{d}\\"), ProviderVerdict::kOk);
    ASSERT_EQ(provider_.EndPrepareSnapshots(set), ProviderVerdict::kOk);
    ASSERT_EQ(provider_.PreCommitSnapshots(set), ProviderVerdict::kOk);
  }

  InProcessHold hold_;
  ProviderStateMachine provider_{hold_};
};

TEST_F(ProviderStateMachineTest, VetoesSetsOurRequesterDidNotCreate) {
  EXPECT_FALSE(provider_.IsVolumeSupported("C:\\"));
  EXPECT_EQ(provider_.BeginPrepareSnapshot("{other}", "C:\\"), ProviderVerdict::kNotOurSet);
  ASSERT_TRUE(hold_.Arm("{ours}").ok());
  EXPECT_TRUE(provider_.IsVolumeSupported("C:\\"));
  EXPECT_EQ(provider_.BeginPrepareSnapshot("{other}", "C:\\"), ProviderVerdict::kNotOurSet);
  EXPECT_EQ(provider_.state(), State::kIdle);
  hold_.Disarm();
  EXPECT_FALSE(provider_.IsVolumeSupported("C:\\"));
}

TEST_F(ProviderStateMachineTest, CommitSignalsHoldingAndBlocksUntilReleased) {
  PrepareSet("{s1}");
  auto commit = std::async(std::launch::async, [&] { return provider_.CommitSnapshots("{s1}"); });
  ASSERT_TRUE(hold_.WaitHolding(kWait));
  EXPECT_EQ(provider_.state(), State::kHolding);
  EXPECT_EQ(commit.wait_for(50ms), std::future_status::timeout) << "returned while held";
  EXPECT_EQ(hold_.hold_end(), HoldEnd::kNotEnded);
  hold_.Release(true);
  EXPECT_EQ(commit.get(), ProviderVerdict::kOk);
  EXPECT_EQ(hold_.hold_end(), HoldEnd::kCommitted);
  EXPECT_EQ(provider_.state(), State::kCommitted);
  EXPECT_EQ(provider_.PostCommitSnapshots("{s1}"), ProviderVerdict::kOk);
  EXPECT_EQ(provider_.volumes(), std::vector<std::string>{"\\\\?\\Volume{d}\\"});
}

TEST_F(ProviderStateMachineTest, ReleaseWithAbortVetoesTheSet) {
  PrepareSet("{s2}");
  auto commit = std::async(std::launch::async, [&] { return provider_.CommitSnapshots("{s2}"); });
  ASSERT_TRUE(hold_.WaitHolding(kWait));
  hold_.Release(false);
  EXPECT_EQ(commit.get(), ProviderVerdict::kAborted);
  EXPECT_EQ(hold_.hold_end(), HoldEnd::kAborted);
  EXPECT_EQ(provider_.state(), State::kAborted);
  EXPECT_EQ(provider_.PostCommitSnapshots("{s2}"), ProviderVerdict::kBadState);
  EXPECT_EQ(provider_.AbortSnapshots("{s2}"), ProviderVerdict::kOk);
}

TEST_F(ProviderStateMachineTest, ReleaseBeforeTheHoldIsKept) {
  PrepareSet("{s3}");
  hold_.Release(true);  // the Thaw overtook the commit
  EXPECT_EQ(provider_.CommitSnapshots("{s3}"), ProviderVerdict::kOk);
  EXPECT_EQ(hold_.hold_end(), HoldEnd::kCommitted);
}

TEST(ProviderHoldLimit, LetsGoOnItsOwnWhenNobodyReleases) {
  InProcessHold hold;
  ProviderStateMachine provider(hold, 100ms);
  ASSERT_TRUE(hold.Arm("{s}").ok());
  ASSERT_EQ(provider.BeginPrepareSnapshot("{s}", "D:\\"), ProviderVerdict::kOk);
  ASSERT_EQ(provider.EndPrepareSnapshots("{s}"), ProviderVerdict::kOk);
  ASSERT_EQ(provider.PreCommitSnapshots("{s}"), ProviderVerdict::kOk);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(provider.CommitSnapshots("{s}"), ProviderVerdict::kHoldLimit);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(hold.hold_end(), HoldEnd::kHoldLimit);
  EXPECT_EQ(provider.state(), State::kAborted);
}

TEST(ProviderHoldLimit, DefaultStaysInsideVssHoldWithTheMargin) {
  EXPECT_EQ(kProviderHoldLimit + limits::kVssHoldMargin, limits::kVssHoldWritesLimit);
  EXPECT_LE(kDefaultLease, kProviderHoldLimit);
}

TEST_F(ProviderStateMachineTest, OutOfOrderCallsAreBadState) {
  ASSERT_TRUE(hold_.Arm("{s4}").ok());
  EXPECT_EQ(provider_.EndPrepareSnapshots("{s4}"), ProviderVerdict::kBadState);
  EXPECT_EQ(provider_.CommitSnapshots("{s4}"), ProviderVerdict::kBadState);
  ASSERT_EQ(provider_.BeginPrepareSnapshot("{s4}", "D:\\"), ProviderVerdict::kOk);
  EXPECT_EQ(provider_.PreCommitSnapshots("{s4}"), ProviderVerdict::kBadState);
  ASSERT_EQ(provider_.EndPrepareSnapshots("{s4}"), ProviderVerdict::kOk);
  EXPECT_EQ(provider_.EndPrepareSnapshots("{s4}"), ProviderVerdict::kBadState);
  EXPECT_EQ(provider_.CommitSnapshots("{s4}"), ProviderVerdict::kBadState);
  EXPECT_EQ(hold_.hold_end(), HoldEnd::kNotEnded) << "no hold without PreCommit";
}

TEST_F(ProviderStateMachineTest, AbortWhileHoldingIsRefusedThenAcceptedAfter) {
  PrepareSet("{s5}");
  auto commit = std::async(std::launch::async, [&] { return provider_.CommitSnapshots("{s5}"); });
  ASSERT_TRUE(hold_.WaitHolding(kWait));
  EXPECT_EQ(provider_.AbortSnapshots("{s5}"), ProviderVerdict::kBadState);
  hold_.Release(false);
  EXPECT_EQ(commit.get(), ProviderVerdict::kAborted);
  EXPECT_EQ(provider_.AbortSnapshots("{s5}"), ProviderVerdict::kOk);
  // A new set starts clean.
  PrepareSet("{s6}");
  EXPECT_EQ(provider_.state(), State::kPreCommitted);
}

}  // namespace
}  // namespace qb::agent::win
