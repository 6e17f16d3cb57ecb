// The thaw guard process on real frozen loop mounts (root only).
#include "guest-agent/linux/thaw_guard.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "guest-agent/linux/fs_freezer.h"
#include "guest-agent/linux/testing/loop_fs.h"

namespace qb::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::TempDir;
using testing::TestMount;

// A lease no test waits for: proves the guard acted on something else.
constexpr auto kLongLease = 120s;

class ThawGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
    mount_ = std::make_unique<TestMount>(dir_.path(), "fs", "ext4");
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    auto set = FsFreezeSet::Open({mount_->mount_point()});
    ASSERT_TRUE(set.ok());
    set_.emplace(std::move(set).value());
    ASSERT_TRUE(set_->FreezeAll(nullptr).ok());
  }
  void TearDown() override {
    set_.reset();
    mount_.reset();
  }
  bool StillFrozen() {
    // FITHAW succeeds only on a frozen fs; refreeze so the caller's view is unchanged.
    auto outcome = ThawMountPoint(mount_->mount_point());
    if (outcome.was_frozen) {
      auto again = FsFreezeSet::Open({mount_->mount_point()});
      if (again.ok()) (void)FreezeFd(again->fds()[0], mount_->mount_point());
    }
    return outcome.was_frozen;
  }

  TempDir dir_;
  std::unique_ptr<TestMount> mount_;
  std::optional<FsFreezeSet> set_;
};

TEST_F(ThawGuardTest, DismissedGuardLeavesTheFreezeAlone) {
  auto guard = ThawGuard::Start(set_->fds(), Clock::now() + kLongLease);
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  guard->Dismiss();
  EXPECT_TRUE(StillFrozen());
  auto outcomes = set_->ThawAll();
  EXPECT_TRUE(outcomes[0].was_frozen);
}

TEST_F(ThawGuardTest, ClosedPipeThawsAtOnce) {
  auto guard = ThawGuard::Start(set_->fds(), Clock::now() + kLongLease);
  ASSERT_TRUE(guard.ok());
  auto before = Clock::now();
  EXPECT_TRUE(guard->ReleaseAndThaw());
  EXPECT_LT(Clock::now() - before, kLongLease / 2);
  auto outcomes = set_->ThawAll();
  EXPECT_FALSE(outcomes[0].was_frozen) << "the guard did not thaw";
}

TEST_F(ThawGuardTest, LeaseExpiryThawsWithoutTheAgent) {
  const auto lease = 300ms;
  auto deadline = Clock::now() + lease;
  auto guard = ThawGuard::Start(set_->fds(), deadline);
  ASSERT_TRUE(guard.ok());
  EXPECT_TRUE(guard->ReleaseAndThawAfterLease());
  EXPECT_GE(Clock::now(), deadline) << "the guard thawed before the lease ran out";
  auto outcomes = set_->ThawAll();
  EXPECT_FALSE(outcomes[0].was_frozen);
}

TEST_F(ThawGuardTest, DestroyingAnUndismissedGuardThaws) {
  {
    auto guard = ThawGuard::Start(set_->fds(), Clock::now() + kLongLease);
    ASSERT_TRUE(guard.ok());
  }
  auto outcomes = set_->ThawAll();
  EXPECT_FALSE(outcomes[0].was_frozen);
}

// The standing guard: spawned idle before anything is frozen, armed at freeze time.
TEST_F(ThawGuardTest, IdleGuardExitsWithoutThawing) {
  auto guard = ThawGuard::Spawn();
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  EXPECT_FALSE(guard->ReleaseAndThaw()) << "an idle guard reported a thaw";
  EXPECT_TRUE(StillFrozen()) << "an idle guard thawed a freeze it was never given";
}

TEST_F(ThawGuardTest, SpareGuardArmedLaterThawsWhenTheAgentGoes) {
  auto guard = ThawGuard::Spawn();
  ASSERT_TRUE(guard.ok()) << guard.status().ToString();
  ASSERT_TRUE(guard->Arm(set_->fds(), Clock::now() + kLongLease).ok());
  EXPECT_TRUE(guard->ReleaseAndThaw());
  auto outcomes = set_->ThawAll();
  EXPECT_FALSE(outcomes[0].was_frozen) << "the armed spare guard did not thaw";
}

TEST_F(ThawGuardTest, SpareGuardArmedLaterHonoursTheLease) {
  auto guard = ThawGuard::Spawn();
  ASSERT_TRUE(guard.ok());
  const auto deadline = Clock::now() + 300ms;
  ASSERT_TRUE(guard->Arm(set_->fds(), deadline).ok());
  EXPECT_TRUE(guard->ReleaseAndThawAfterLease());
  EXPECT_GE(Clock::now(), deadline) << "the guard thawed before the lease ran out";
  auto outcomes = set_->ThawAll();
  EXPECT_FALSE(outcomes[0].was_frozen);
}

TEST_F(ThawGuardTest, SendDoneThenReapLeavesTheFreezeAlone) {
  auto guard = ThawGuard::Start(set_->fds(), Clock::now() + kLongLease);
  ASSERT_TRUE(guard.ok());
  guard->SendDone();
  EXPECT_EQ(guard->Reap(), kGuardExitDismissed);
  EXPECT_TRUE(StillFrozen());
}

TEST_F(ThawGuardTest, ArmingADeadGuardFails) {
  auto guard = ThawGuard::Spawn();
  ASSERT_TRUE(guard.ok());
  ::kill(guard->pid(), SIGKILL);
  Status armed = guard->Arm(set_->fds(), Clock::now() + kLongLease);
  EXPECT_FALSE(armed.ok());
  EXPECT_EQ(guard->pid(), -1) << "a failed guard must be reaped";
}

TEST_F(ThawGuardTest, ManyDescriptorsInSeveralMessages) {
  // More descriptors than one arming message carries (the same mount, opened again).
  std::vector<std::string> mounts(450, mount_->mount_point());
  auto many = FsFreezeSet::Open(mounts);
  ASSERT_TRUE(many.ok());
  auto guard = ThawGuard::Spawn();
  ASSERT_TRUE(guard.ok());
  ASSERT_TRUE(guard->Arm(many->fds(), Clock::now() + kLongLease).ok());
  EXPECT_TRUE(guard->ReleaseAndThaw());
  auto outcomes = set_->ThawAll();
  EXPECT_FALSE(outcomes[0].was_frozen);
}

}  // namespace
}  // namespace qb::agent
