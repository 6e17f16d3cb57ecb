// Real FIFREEZE / FITHAW on loop-mounted ext4 and XFS images (root only).
#include "guest-agent/linux/fs_freezer.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "guest-agent/linux/testing/loop_fs.h"

namespace qb::agent {
namespace {

using namespace std::chrono_literals;
using testing::BackgroundWriter;
using testing::TempDir;
using testing::TestMount;

// Long enough that an unfrozen write + fsync on a loop image finishes on a loaded machine.
constexpr auto kWriteCompletes = 20s;
// How long a blocked writer is watched to stay blocked. Passing never depends on it being long.
constexpr auto kStaysBlocked = 500ms;

class FsFreezerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root (loop mounts, FIFREEZE)";
  }
};

TEST_P(FsFreezerTest, WritesBlockWhileFrozenAndCompleteAfterThaw) {
  TempDir dir;
  TestMount mount(dir.path(), "fs", GetParam());
  ASSERT_TRUE(mount.ok()) << mount.error();
  auto set = FsFreezeSet::Open({mount.mount_point()});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  std::vector<SkippedMount> skipped;
  ASSERT_TRUE(set->FreezeAll(&skipped).ok());
  EXPECT_TRUE(skipped.empty());
  EXPECT_TRUE(set->frozen());

  BackgroundWriter writer(mount.mount_point(), mount.mount_point() + "/file");
  EXPECT_FALSE(writer.WaitDone(kStaysBlocked)) << "a write completed on a frozen file system";

  auto outcomes = set->ThawAll();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].was_frozen);
  EXPECT_TRUE(outcomes[0].status.ok());
  EXPECT_TRUE(writer.WaitDone(kWriteCompletes)) << "the write did not complete after thaw";
}

TEST_P(FsFreezerTest, SecondFreezeIsAlreadyFrozenAndUndoesItsOwn) {
  TempDir dir;
  TestMount first(dir.path(), "a", "ext4");
  TestMount second(dir.path(), "b", GetParam());
  ASSERT_TRUE(first.ok() && second.ok());
  // Someone else freezes `first`; our set freezes in reverse order: `second`, then `first`.
  auto other = FsFreezeSet::Open({first.mount_point()});
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->FreezeAll(nullptr).ok());

  auto set = FsFreezeSet::Open({first.mount_point(), second.mount_point()});
  ASSERT_TRUE(set.ok());
  Status status = set->FreezeAll(nullptr);
  EXPECT_EQ(status.code(), Code::kAlreadyFrozen) << status.ToString();
  EXPECT_FALSE(set->frozen());
  // `second` was frozen by our call and must have been thawed again.
  EXPECT_FALSE(ThawMountPoint(second.mount_point()).was_frozen);
  // The other freeze is untouched.
  EXPECT_TRUE(ThawMountPoint(first.mount_point()).was_frozen);
}

TEST_P(FsFreezerTest, ThawBehindOurBackIsReportedAsNotFrozen) {
  TempDir dir;
  TestMount mount(dir.path(), "fs", GetParam());
  ASSERT_TRUE(mount.ok());
  auto set = FsFreezeSet::Open({mount.mount_point()});
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->FreezeAll(nullptr).ok());
  ASSERT_EQ(testing::Shell("fsfreeze --unfreeze '" + mount.mount_point() + "'"), 0);
  auto outcomes = set->ThawAll();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].was_frozen);
  EXPECT_TRUE(outcomes[0].status.ok());
}

INSTANTIATE_TEST_SUITE_P(Ext4AndXfs, FsFreezerTest, ::testing::Values("ext4", "xfs"));

TEST(FsFreezerTmpfsTest, TmpfsIsSkippedAndReported) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  TempDir dir;
  TestMount tmpfs(dir.path(), "t", "tmpfs");
  TestMount ext4(dir.path(), "e", "ext4");
  ASSERT_TRUE(tmpfs.ok() && ext4.ok());
  auto set = FsFreezeSet::Open({tmpfs.mount_point(), ext4.mount_point()});
  ASSERT_TRUE(set.ok());
  std::vector<SkippedMount> skipped;
  ASSERT_TRUE(set->FreezeAll(&skipped).ok());
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_EQ(skipped[0].mount_point, tmpfs.mount_point());
  EXPECT_NE(skipped[0].reason.find("does not support"), std::string::npos);
  EXPECT_EQ(set->frozen_mount_points(), std::vector<std::string>{ext4.mount_point()});
  auto outcomes = set->ThawAll();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].was_frozen);
}

TEST(FsFreezerOpenTest, MissingMountPointIsNotFound) {
  auto set = FsFreezeSet::Open({"/nonexistent/qb-agent-test"});
  EXPECT_EQ(set.status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace qb::agent
