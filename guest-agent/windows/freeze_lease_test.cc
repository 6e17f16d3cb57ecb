#include "guest-agent/windows/freeze_lease.h"

#include <gtest/gtest.h>

#include <atomic>

#include "common/time_limits.h"

namespace qb::agent::win {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

TEST(FreezeLease, ExpiresOnItsOwnThread) {
  FreezeLease lease;
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  std::thread::id fired_on;
  lease.Arm(Clock::now() + 50ms, [&] {
    std::lock_guard lock(mu);
    fired = true;
    fired_on = std::this_thread::get_id();
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return fired; }));
  EXPECT_NE(fired_on, std::this_thread::get_id());
  lock.unlock();
  EXPECT_FALSE(lease.End()) << "already expired";
  EXPECT_TRUE(lease.expired_at().has_value());
}

TEST(FreezeLease, EndedInTimeNeverFires) {
  FreezeLease lease;
  std::atomic<int> fired{0};
  lease.Arm(Clock::now() + kWait, [&] { ++fired; });
  EXPECT_TRUE(lease.End());
  EXPECT_FALSE(lease.End()) << "second End: nothing armed";
  EXPECT_EQ(fired.load(), 0);
  EXPECT_FALSE(lease.expired_at().has_value());
}

TEST(FreezeLease, EndWaitsForARunningCallback) {
  FreezeLease lease;
  std::atomic<bool> started{false}, finished{false};
  lease.Arm(Clock::now(), [&] {
    started = true;
    std::this_thread::sleep_for(100ms);
    finished = true;
  });
  while (!started) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(lease.End());
  EXPECT_TRUE(finished.load()) << "End() returned while the thaw was still running";
}

TEST(FreezeLease, RearmReplacesTheOldLease) {
  FreezeLease lease;
  std::atomic<int> first{0}, second{0};
  lease.Arm(Clock::now() + 30ms, [&] { ++first; });
  lease.Arm(Clock::now() + kWait, [&] { ++second; });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(first.load(), 0);
  EXPECT_TRUE(lease.End());
  EXPECT_EQ(second.load(), 0);
}

TEST(FreezeLease, DestructionDropsAnArmedLease) {
  std::atomic<int> fired{0};
  {
    FreezeLease lease;
    lease.Arm(Clock::now() + kWait, [&] { ++fired; });
  }
  EXPECT_EQ(fired.load(), 0);
}

}  // namespace
}  // namespace qb::agent::win
