// The cross-process provider channel, both ends in one process under Wine (named kernel events
// behave the same across processes), driving the real provider state machine.
#include "guest-agent/windows/vss/named_event_hold.h"

#include <gtest/gtest.h>
#include <process.h>

#include <future>
#include <thread>

#include "guest-agent/windows/vss/provider_state_machine.h"

namespace qb::agent::win {
namespace {

using namespace std::chrono_literals;
constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

std::string TestPrefix() {
  static int n = 0;
  // Local namespace: tests need no privilege and never meet a real agent's events.
  return "Local\\qb-test-" + std::to_string(_getpid()) + "-" + std::to_string(++n);
}

TEST(NamedEventHold, ProviderTakesPartOnlyInArmedSets) {
  const auto prefix = TestPrefix();
  NamedEventProviderLink agent(prefix);
  NamedEventHoldChannel dll(prefix);
  EXPECT_FALSE(dll.AnyArmed());
  EXPECT_FALSE(dll.IsArmed("{set-1}"));
  ASSERT_TRUE(agent.Arm("{set-1}").ok());
  EXPECT_TRUE(dll.AnyArmed());
  EXPECT_TRUE(dll.IsArmed("{set-1}"));
  EXPECT_FALSE(dll.IsArmed("{set-2}"));
  agent.Disarm();
  EXPECT_FALSE(dll.AnyArmed());
  EXPECT_FALSE(dll.IsArmed("{set-1}"));
}

TEST(NamedEventHold, CommitPathAcrossTheChannel) {
  const auto prefix = TestPrefix();
  NamedEventProviderLink agent(prefix);
  NamedEventHoldChannel dll(prefix);
  ProviderStateMachine provider(dll);
  ASSERT_TRUE(agent.Arm("{s}").ok());
  ASSERT_EQ(provider.BeginPrepareSnapshot("{s}", "D:\\"), ProviderVerdict::kOk);
  ASSERT_EQ(provider.EndPrepareSnapshots("{s}"), ProviderVerdict::kOk);
  ASSERT_EQ(provider.PreCommitSnapshots("{s}"), ProviderVerdict::kOk);
  auto commit = std::async(std::launch::async, [&] { return provider.CommitSnapshots("{s}"); });
  ASSERT_TRUE(agent.WaitHolding(kWait));
  EXPECT_EQ(agent.hold_end(), HoldEnd::kNotEnded);
  EXPECT_EQ(commit.wait_for(50ms), std::future_status::timeout);
  agent.Release(true);
  agent.Release(false);  // the first release decides
  EXPECT_EQ(commit.get(), ProviderVerdict::kOk);
  EXPECT_EQ(agent.WaitHoldEnd(kWait), HoldEnd::kCommitted);
  agent.Disarm();
}

TEST(NamedEventHold, AbortAndHoldLimitAcrossTheChannel) {
  const auto prefix = TestPrefix();
  NamedEventProviderLink agent(prefix);
  NamedEventHoldChannel dll(prefix);
  {
    ProviderStateMachine provider(dll);
    ASSERT_TRUE(agent.Arm("{a}").ok());
    provider.BeginPrepareSnapshot("{a}", "D:\\");
    provider.EndPrepareSnapshots("{a}");
    provider.PreCommitSnapshots("{a}");
    auto commit = std::async(std::launch::async, [&] { return provider.CommitSnapshots("{a}"); });
    ASSERT_TRUE(agent.WaitHolding(kWait));
    agent.Release(false);
    EXPECT_EQ(commit.get(), ProviderVerdict::kAborted);
    EXPECT_EQ(agent.WaitHoldEnd(kWait), HoldEnd::kAborted);
  }
  {
    ProviderStateMachine provider(dll, 100ms);
    ASSERT_TRUE(agent.Arm("{b}").ok());
    provider.BeginPrepareSnapshot("{b}", "D:\\");
    provider.EndPrepareSnapshots("{b}");
    provider.PreCommitSnapshots("{b}");
    // On another thread, as in the real provider process: the arming thread owns the set's
    // "alive" mutex, and a mutex never blocks its owner.
    auto commit = std::async(std::launch::async, [&] { return provider.CommitSnapshots("{b}"); });
    EXPECT_EQ(commit.get(), ProviderVerdict::kHoldLimit);
    EXPECT_EQ(agent.WaitHoldEnd(kWait), HoldEnd::kHoldLimit);
  }
  agent.Disarm();
}

TEST(NamedEventHold, ProviderLetsGoAtOnceWhenTheArmingThreadDies) {
  const auto prefix = TestPrefix();
  NamedEventProviderLink agent(prefix);
  NamedEventHoldChannel dll(prefix);
  ProviderStateMachine provider(dll);  // default 8.5 s hold limit
  // The arming thread ends while the set is armed: its mutex is abandoned, as when the agent
  // process dies during a freeze.
  std::thread([&] { ASSERT_TRUE(agent.Arm("{dies}").ok()); }).join();
  provider.BeginPrepareSnapshot("{dies}", "D:\\");
  provider.EndPrepareSnapshots("{dies}");
  provider.PreCommitSnapshots("{dies}");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(provider.CommitSnapshots("{dies}"), ProviderVerdict::kAborted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, kProviderHoldLimit)
      << "held to the limit instead of noticing the agent was gone";
  EXPECT_EQ(agent.WaitHoldEnd(kWait), HoldEnd::kAborted);
  agent.Disarm();
}

TEST(NamedEventHold, ProviderLetsGoWhenTheAgentIsGone) {
  const auto prefix = TestPrefix();
  NamedEventHoldChannel dll(prefix);
  ProviderStateMachine provider(dll);
  {
    NamedEventProviderLink agent(prefix);
    ASSERT_TRUE(agent.Arm("{gone}").ok());
    provider.BeginPrepareSnapshot("{gone}", "D:\\");
    provider.EndPrepareSnapshots("{gone}");
    provider.PreCommitSnapshots("{gone}");
  }  // the agent died: its events are gone
  EXPECT_EQ(provider.CommitSnapshots("{gone}"), ProviderVerdict::kNotOurSet);
}

}  // namespace
}  // namespace qb::agent::win
