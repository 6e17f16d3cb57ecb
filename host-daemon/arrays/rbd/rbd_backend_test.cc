// RbdBackend on a real single-node Ceph cluster (ctest fixture qb_ceph_cluster, see
// tests/ceph/ceph-cluster.sh). Every test makes its own images, named after the test, and
// removes them at the end.
#include "host-daemon/arrays/rbd/rbd_backend.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "host-daemon/arrays/rbd/test_cluster.h"

namespace qb::arrays::rbd {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ClusterConfig;
using testing::TestCluster;

const std::string kBlockA(4096, 'A');
const std::string kBlockB(4096, 'B');
const std::string kBlockC(4096, 'C');

// A deadline no healthy single-node cluster comes near: one whole default lease.
Clock::time_point GenerousDeadline() { return Clock::now() + limits::kDefaultLease; }
// The budget Prepare gets: the array-call share of a default lease.
constexpr std::chrono::milliseconds kBudget = limits::kDefaultLease - limits::kArrayCallMargin;

class RbdBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<TestCluster>> cluster = TestCluster::Connect();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
    backend_ = std::make_unique<RbdBackend>(ClusterConfig());
    prefix_ = std::string("t-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    backend_.reset();  // closes its handles before the images go
    cluster_.reset();
  }

  // Creates image "<test name>-<suffix>" holding kBlockA at offset 0; returns its LunSpec.
  LunSpec MakeImage(const std::string& suffix) {
    const std::string name = ImageName(suffix);
    EXPECT_TRUE(cluster_->CreateImage(name).ok());
    EXPECT_TRUE(cluster_->Write(name, 0, kBlockA).ok());
    return LunSpec{"rbd", "rbd/" + name, ""};
  }
  std::string ImageName(const std::string& suffix) const { return prefix_ + "-" + suffix; }
  std::string GroupName() const { return "qb-" + ImageName("a"); }

  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<RbdBackend> backend_;
  std::string prefix_;
};

TEST_F(RbdBackendTest, ResolveTellsWhatIsThere) {
  const LunSpec lun = MakeImage("a");
  EXPECT_TRUE(backend_->Resolve(lun).ok());
  EXPECT_EQ(backend_->Resolve({"rbd", "rbd/" + ImageName("missing"), ""}).code(), Code::kNotFound);
  EXPECT_EQ(backend_->Resolve({"rbd", "nopool/" + ImageName("a"), ""}).code(), Code::kNotFound);
  EXPECT_EQ(backend_->Resolve({"rbd", "no-slash", ""}).code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->name(), "rbd");
  EXPECT_TRUE(backend_->capabilities().atomic_group);
}

TEST_F(RbdBackendTest, SingleImageSnapshotHoldsTheDataAtTheCut) {
  const LunSpec lun = MakeImage("a");
  Result<PrepareReport> report = backend_->Prepare({lun}, kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->projected_cut, kProjectedImageSnapshot);

  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({lun}, "job1", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 1u);
  const SnapshotRecord& record = records->front();
  EXPECT_EQ(record.lun, lun.volume);
  EXPECT_EQ(record.array_name, lun.volume + "@qb-job1-" + ImageName("a"));
  EXPECT_EQ(record.job_key, "job1");
  EXPECT_EQ(record.backend, "rbd");

  ASSERT_TRUE(cluster_->Write(ImageName("a"), 0, kBlockB).ok());
  Result<std::string> at_cut = cluster_->Read(ImageName("a"), 0, 4096, "qb-job1-" + ImageName("a"));
  ASSERT_TRUE(at_cut.ok()) << at_cut.status().ToString();
  EXPECT_EQ(*at_cut, kBlockA);
  Result<std::string> head = cluster_->Read(ImageName("a"), 0, 4096);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, kBlockB);

  Result<std::vector<SnapshotRecord>> listed = backend_->List(lun);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().array_name, record.array_name);
}

TEST_F(RbdBackendTest, SnapshotWhileAnotherClientOwnsTheExclusiveLock) {
  // The VM's QEMU is a separate librbd client that owns the image's exclusive lock while it
  // writes; the backend's snapshot request must be served through it, not wait for it.
  const LunSpec lun = MakeImage("a");
  ASSERT_TRUE(backend_->Prepare({lun}, kBudget).ok());
  Result<std::shared_ptr<RbdImage>> writer =
      RbdImage::Open(std::shared_ptr<IoCtx>(&cluster_->pool(), [](IoCtx*) {}), ImageName("a"),
                     RbdImage::Mode::kReadWrite);
  ASSERT_TRUE(writer.ok());
  ASSERT_EQ(rbd_write((*writer)->get(), 0, kBlockC.size(), kBlockC.data()),
            static_cast<ssize_t>(kBlockC.size()));
  ASSERT_EQ(rbd_flush((*writer)->get()), 0);
  int owner = 0;
  ASSERT_EQ(rbd_is_exclusive_lock_owner((*writer)->get(), &owner), 0);
  ASSERT_EQ(owner, 1);

  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({lun}, "locked", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  // Later writes by the lock owner do not reach the snapshot.
  ASSERT_EQ(rbd_write((*writer)->get(), 0, kBlockB.size(), kBlockB.data()),
            static_cast<ssize_t>(kBlockB.size()));
  ASSERT_EQ(rbd_flush((*writer)->get()), 0);
  writer->reset();
  EXPECT_EQ(*cluster_->Read(ImageName("a"), 0, 4096, "qb-locked-" + ImageName("a")), kBlockC);
  EXPECT_EQ(*cluster_->Read(ImageName("a"), 0, 4096), kBlockB);
}

TEST_F(RbdBackendTest, SnapshotWithoutPrepareOpensTheImageItself) {
  const LunSpec lun = MakeImage("a");
  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({lun}, "noprep", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(records->size(), 1u);
}

TEST_F(RbdBackendTest, AdminSnapshotsAreNotListed) {
  const LunSpec lun = MakeImage("a");
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(std::shared_ptr<IoCtx>(&cluster_->pool(), [](IoCtx*) {}), ImageName("a"),
                     RbdImage::Mode::kReadWrite);
  ASSERT_TRUE(image.ok());
  ASSERT_EQ(rbd_snap_create((*image)->get(), "admin-nightly"), 0);
  ASSERT_EQ(rbd_snap_create((*image)->get(), "qb-"), 0);  // prefix but no key: not ours
  image->reset();
  Result<std::vector<SnapshotRecord>> listed = backend_->List(lun);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->empty());
}

TEST_F(RbdBackendTest, GroupSnapshotCutsEveryImageAtOnce) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  Result<PrepareReport> report = backend_->Prepare({b, a}, kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->projected_cut,
            kProjectedGroupSnapshotBase + 2 * kProjectedGroupSnapshotPerImage);
  ASSERT_FALSE(report->warnings.empty());  // says it created the group and added the images
  EXPECT_NE(report->warnings.front().find(GroupName()), std::string::npos);
  // A second Prepare finds everything in place.
  report = backend_->Prepare({a, b}, kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->warnings.empty());

  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({a, b}, "g1", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_EQ(records->size(), 2u);
  const std::string group_snap = "qb-g1-" + GroupName();
  EXPECT_EQ((*records)[0].lun, a.volume);
  EXPECT_EQ((*records)[1].lun, b.volume);
  for (const SnapshotRecord& record : *records) {
    EXPECT_EQ(record.array_name, "group:rbd/" + GroupName() + "@" + group_snap);
    EXPECT_EQ(record.job_key, "g1");
  }
  Result<std::vector<GroupSnap>> group_snaps = cluster_->GroupSnaps(GroupName());
  ASSERT_TRUE(group_snaps.ok()) << group_snaps.status().ToString();
  ASSERT_EQ(group_snaps->size(), 1u);
  EXPECT_TRUE(group_snaps->front().complete);

  for (const char* suffix : {"a", "b"}) {
    ASSERT_TRUE(cluster_->Write(ImageName(suffix), 0, kBlockB).ok());
    Result<std::string> at_cut =
        cluster_->ReadGroupSnap(ImageName(suffix), GroupName(), group_snap, 0, 4096);
    ASSERT_TRUE(at_cut.ok()) << at_cut.status().ToString();
    EXPECT_EQ(*at_cut, kBlockA) << suffix;
  }
  // Each image lists its share of the group snapshot.
  for (const LunSpec& lun : {a, b}) {
    Result<std::vector<SnapshotRecord>> listed = backend_->List(lun);
    ASSERT_TRUE(listed.ok()) << listed.status().ToString();
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().array_name, (*records)[0].array_name);
    EXPECT_EQ(listed->front().lun, lun.volume);
  }
}

TEST_F(RbdBackendTest, GroupSnapshotCreatesNothingWhenAnImageLeftTheGroup) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  // Someone takes b out of the group between Prepare and the freeze.
  ASSERT_EQ(rbd_group_image_remove(cluster_->pool().get(), GroupName().c_str(),
                                   cluster_->pool().get(), ImageName("b").c_str()),
            0);

  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({a, b}, "atom", GenerousDeadline());
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), Code::kConflict) << records.status().ToString();

  Result<std::vector<GroupSnap>> group_snaps = cluster_->GroupSnaps(GroupName());
  ASSERT_TRUE(group_snaps.ok());
  EXPECT_TRUE(group_snaps->empty());
  for (const char* suffix : {"a", "b"}) {
    Result<std::vector<ImageSnap>> snaps = cluster_->Snaps(ImageName(suffix));
    ASSERT_TRUE(snaps.ok());
    EXPECT_TRUE(snaps->empty()) << suffix;
  }
  Result<std::vector<SnapshotRecord>> found = backend_->FindByKey({a, b}, "atom");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->empty());

  // Prepare repairs the group, then the snapshot works.
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  EXPECT_TRUE(backend_->Snapshot({a, b}, "atom2", GenerousDeadline()).ok());
}

TEST_F(RbdBackendTest, GroupSnapshotRefusesAGroupWithAStranger) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  const LunSpec c = MakeImage("c");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  ASSERT_EQ(rbd_group_image_add(cluster_->pool().get(), GroupName().c_str(), cluster_->pool().get(),
                                ImageName("c").c_str()),
            0);
  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({a, b}, "stranger", GenerousDeadline());
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.status().code(), Code::kConflict);
  // Prepare takes the stranger out of the product's own group.
  Result<PrepareReport> report = backend_->Prepare({a, b}, kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->warnings.size(), 1u);
  EXPECT_NE(report->warnings.front().find("removed rbd/" + ImageName("c")), std::string::npos);
  EXPECT_TRUE(backend_->Snapshot({a, b}, "stranger", GenerousDeadline()).ok());
  (void)c;
}

TEST_F(RbdBackendTest, PrepareReportsAnImageInAnotherGroupAndChangesNothing) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  const std::string admin_group = ImageName("admins");
  ASSERT_TRUE(cluster_->CreateGroup(admin_group, {ImageName("b")}).ok());

  Result<PrepareReport> report = backend_->Prepare({a, b}, kBudget);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kConflict);
  EXPECT_NE(report.status().message().find(admin_group), std::string::npos)
      << report.status().message();
  // Nothing changed: our group was not even created, a stayed out of every group.
  Result<std::vector<GroupImage>> members = ListGroupImages(cluster_->pool(), GroupName());
  EXPECT_TRUE(members.status().code() == Code::kNotFound || (members.ok() && members->empty()));
  Result<std::shared_ptr<RbdImage>> image =
      RbdImage::Open(std::shared_ptr<IoCtx>(&cluster_->pool(), [](IoCtx*) {}), ImageName("a"),
                     RbdImage::Mode::kReadOnly);
  ASSERT_TRUE(image.ok());
  Result<std::optional<GroupRef>> group = GroupOfImage(**image);
  ASSERT_TRUE(group.ok());
  EXPECT_FALSE(group->has_value());
}

TEST_F(RbdBackendTest, PrepareRefusesWhatCannotFitTheBudget) {
  const LunSpec a = MakeImage("a");
  Result<PrepareReport> report = backend_->Prepare({a}, std::chrono::milliseconds(1));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kTimeout);
  EXPECT_EQ(backend_->Prepare({a, a}, kBudget).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Prepare({}, kBudget).status().code(), Code::kInvalidArgument);
}

TEST_F(RbdBackendTest, FindByKeyAfterACrashUsesOnlyTheNames) {
  const LunSpec single = MakeImage("s");
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  Result<std::vector<SnapshotRecord>> one = backend_->Snapshot({single}, "k1", GenerousDeadline());
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  Result<std::vector<SnapshotRecord>> two = backend_->Snapshot({a, b}, "k1", GenerousDeadline());
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  ASSERT_TRUE(backend_->Snapshot({single}, "k2", GenerousDeadline()).ok());

  backend_.reset();  // the daemon "crashes": a new process knows nothing but the key
  RbdBackend restarted(ClusterConfig());
  Result<std::vector<SnapshotRecord>> found = restarted.FindByKey({single, a, b}, "k1");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 3u);
  EXPECT_EQ((*found)[0].array_name, one->front().array_name);
  EXPECT_EQ((*found)[1].array_name, (*two)[0].array_name);
  EXPECT_EQ((*found)[1].lun, a.volume);
  EXPECT_EQ((*found)[2].lun, b.volume);
  for (const SnapshotRecord& record : *found) EXPECT_EQ(record.job_key, "k1");

  found = restarted.FindByKey({single, a, b}, "k3");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  // A LUN that disappeared has no snapshots; that is not an error.
  found = restarted.FindByKey({{"rbd", "rbd/" + ImageName("gone"), ""}}, "k1");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->empty());
  EXPECT_EQ(restarted.FindByKey({single}, "bad-key").status().code(), Code::kInvalidArgument);
}

TEST_F(RbdBackendTest, RemoveIsIdempotent) {
  const LunSpec single = MakeImage("s");
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  Result<std::vector<SnapshotRecord>> one = backend_->Snapshot({single}, "r1", GenerousDeadline());
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  Result<std::vector<SnapshotRecord>> two = backend_->Snapshot({a, b}, "r1", GenerousDeadline());
  ASSERT_TRUE(two.ok()) << two.status().ToString();

  for (int round = 0; round < 2; ++round) {
    EXPECT_TRUE(backend_->Remove(one->front()).ok()) << round;
    for (const SnapshotRecord& record : *two) EXPECT_TRUE(backend_->Remove(record).ok()) << round;
  }
  Result<std::vector<SnapshotRecord>> found = backend_->FindByKey({single, a, b}, "r1");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  Result<std::vector<GroupSnap>> group_snaps = cluster_->GroupSnaps(GroupName());
  ASSERT_TRUE(group_snaps.ok());
  EXPECT_TRUE(group_snaps->empty());

  // The image itself gone: still success.
  SnapshotRecord orphan = one->front();
  orphan.array_name = "rbd/" + ImageName("gone") + "@qb-r1-gone";
  EXPECT_TRUE(backend_->Remove(orphan).ok());
  orphan.array_name = "group:rbd/qb-nosuchgroup@qb-r1-x";
  EXPECT_TRUE(backend_->Remove(orphan).ok());
  orphan.array_name = "garbage";
  EXPECT_EQ(backend_->Remove(orphan).code(), Code::kInvalidArgument);
}

TEST_F(RbdBackendTest, ASecondSnapshotUnderTheSameKeyIsAConflictAndKeepsTheFirst) {
  const LunSpec lun = MakeImage("a");
  ASSERT_TRUE(backend_->Snapshot({lun}, "dup", GenerousDeadline()).ok());
  Result<std::vector<SnapshotRecord>> again = backend_->Snapshot({lun}, "dup", GenerousDeadline());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kConflict);
  Result<std::vector<SnapshotRecord>> found = backend_->FindByKey({lun}, "dup");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 1u);
  EXPECT_EQ(backend_->Snapshot({lun}, "not-valid", GenerousDeadline()).status().code(),
            Code::kInvalidArgument);
}

TEST_F(RbdBackendTest, CloneExposesTheSnapshotAsANewImage) {
  const LunSpec lun = MakeImage("a");
  Result<std::vector<SnapshotRecord>> records = backend_->Snapshot({lun}, "c1", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_TRUE(cluster_->Write(ImageName("a"), 0, kBlockB).ok());

  const std::string clone_name = ImageName("clone");
  cluster_->Track(clone_name);
  Result<std::string> clone = backend_->Clone(records->front(), clone_name);
  ASSERT_TRUE(clone.ok()) << clone.status().ToString();
  EXPECT_EQ(*clone, "rbd/" + clone_name);
  Result<std::string> data = cluster_->Read(clone_name, 0, 4096);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, kBlockA);
  // The clone is writable and independent of the LUN.
  ASSERT_TRUE(cluster_->Write(clone_name, 0, kBlockC).ok());
  EXPECT_EQ(*cluster_->Read(ImageName("a"), 0, 4096), kBlockB);

  EXPECT_EQ(backend_->Clone(records->front(), clone_name).status().code(), Code::kConflict);
  // A snapshot with a clone cannot go; once the clone is gone it can.
  EXPECT_EQ(backend_->Remove(records->front()).code(), Code::kConflict);
  ASSERT_TRUE(cluster_->RemoveImage(clone_name).ok());
  EXPECT_TRUE(backend_->Remove(records->front()).ok());
}

TEST_F(RbdBackendTest, CloneOfAGroupSnapshotCopiesTheImageAtTheCut) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({a, b}, "gc", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_TRUE(cluster_->Write(ImageName("b"), 0, kBlockB).ok());

  const std::string clone_name = ImageName("bclone");
  cluster_->Track(clone_name);
  Result<std::string> clone = backend_->Clone((*records)[1], clone_name);
  ASSERT_TRUE(clone.ok()) << clone.status().ToString();
  Result<std::string> data = cluster_->Read(clone_name, 0, 4096);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, kBlockA);
}

TEST_F(RbdBackendTest, RollbackRevertsTheImage) {
  const LunSpec lun = MakeImage("a");
  ASSERT_TRUE(backend_->Prepare({lun}, kBudget).ok());
  Result<std::vector<SnapshotRecord>> records = backend_->Snapshot({lun}, "rb", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_TRUE(cluster_->Write(ImageName("a"), 0, kBlockB).ok());
  ASSERT_TRUE(cluster_->Write(ImageName("a"), 8192, kBlockC).ok());

  Status status = backend_->Rollback(records->front());
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(*cluster_->Read(ImageName("a"), 0, 4096), kBlockA);
  EXPECT_EQ(*cluster_->Read(ImageName("a"), 8192, 4096), std::string(4096, '\0'));

  ASSERT_TRUE(backend_->Remove(records->front()).ok());
  EXPECT_EQ(backend_->Rollback(records->front()).code(), Code::kNotFound);
}

TEST_F(RbdBackendTest, RollbackOfAGroupSnapshotRevertsEveryImageToTheSameCut) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  Result<std::vector<SnapshotRecord>> records =
      backend_->Snapshot({a, b}, "grb", GenerousDeadline());
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_TRUE(cluster_->Write(ImageName("a"), 0, kBlockB).ok());
  ASSERT_TRUE(cluster_->Write(ImageName("b"), 0, kBlockC).ok());

  Status status = backend_->Rollback((*records)[0]);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(*cluster_->Read(ImageName("a"), 0, 4096), kBlockA);
  EXPECT_EQ(*cluster_->Read(ImageName("b"), 0, 4096), kBlockA);
}

TEST_F(RbdBackendTest, ADeadlineThatHasPassedCreatesNothing) {
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend_->Prepare({a, b}, kBudget).ok());
  for (const std::vector<LunSpec>& luns : {std::vector<LunSpec>{a}, std::vector<LunSpec>{a, b}}) {
    Result<std::vector<SnapshotRecord>> records =
        backend_->Snapshot(luns, "late", Clock::now() - std::chrono::milliseconds(1));
    ASSERT_FALSE(records.ok());
    EXPECT_EQ(records.status().code(), Code::kTimeout);
  }
  Result<std::vector<SnapshotRecord>> found = backend_->FindByKey({a, b}, "late");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
}

TEST_F(RbdBackendTest, TheLeastPrivilegedUserTheReadmeNamesIsEnough) {
  Result<std::string> keyring = cluster_->CreateRbdUser("qbtest");
  ASSERT_TRUE(keyring.ok()) << keyring.status().ToString();
  RbdConfig config = ClusterConfig();
  config.client_id = "qbtest";
  config.keyring_path = *keyring;
  RbdBackend backend(config);
  const LunSpec single = MakeImage("s");
  const LunSpec a = MakeImage("a");
  const LunSpec b = MakeImage("b");
  ASSERT_TRUE(backend.Prepare({single}, kBudget).ok());
  Result<PrepareReport> report = backend.Prepare({a, b}, kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  for (const std::vector<LunSpec>& luns : {std::vector<LunSpec>{single}, {a, b}}) {
    Result<std::vector<SnapshotRecord>> records = backend.Snapshot(luns, "lp", GenerousDeadline());
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    Result<std::vector<SnapshotRecord>> found = backend.FindByKey(luns, "lp");
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    EXPECT_EQ(found->size(), luns.size());
    EXPECT_TRUE(backend.Remove(records->front()).ok());
  }
  // A wrong key is refused by cephx, clearly.
  config.client_id = "nosuchuser";
  RbdBackend stranger(config);
  Status status = stranger.Resolve(single);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("client.nosuchuser"), std::string::npos) << status.ToString();
}

TEST_F(RbdBackendTest, WorkerThreadsSnapshotDifferentVmsAtOnce) {
  constexpr int kVms = 4;
  std::vector<LunSpec> luns;
  for (int i = 0; i < kVms; ++i) luns.push_back(MakeImage("vm" + std::to_string(i)));
  std::vector<Status> results(kVms);
  std::vector<std::thread> workers;
  for (int i = 0; i < kVms; ++i) {
    workers.emplace_back([&, i] {
      Result<std::vector<SnapshotRecord>> records =
          backend_->Snapshot({luns[i]}, "par" + std::to_string(i), GenerousDeadline());
      results[i] = records.status();
    });
  }
  for (std::thread& worker : workers) worker.join();
  for (int i = 0; i < kVms; ++i) {
    EXPECT_TRUE(results[i].ok()) << i << ": " << results[i].ToString();
    Result<std::vector<SnapshotRecord>> found =
        backend_->FindByKey({luns[i]}, "par" + std::to_string(i));
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->size(), 1u) << i;
  }
}

TEST_F(RbdBackendTest, AnUnreachableClusterIsATimeoutNotAHang) {
  // A ceph.conf whose mon address has nothing listening (the fixture's own port + 2 is the
  // OSD range's far side: nothing binds it on 127.0.0.1 during the test).
  const std::string conf = testing::ClusterDir() + "/unreachable.conf";
  {
    std::ifstream port_file(testing::ClusterDir() + "/port");
    int port = 0;
    port_file >> port;
    ASSERT_GT(port, 0);
    std::ofstream out(conf);
    out << "[global]\nmon host = 127.0.0.1:" << (port + 2) << "\nauth client required = cephx\n";
  }
  RbdConfig config = ClusterConfig();
  config.conf_path = conf;
  config.connect_timeout = limits::kThawMargin;  // the shortest limit librados takes (1 s)
  RbdBackend unreachable(config);
  const auto start = Clock::now();
  Status status = unreachable.Resolve(MakeImage("a"));
  const auto took = Clock::now() - start;
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), Code::kTimeout) << status.ToString();
  // Generous: bounded by the connect timeout, not by anything else.
  EXPECT_LT(took, limits::kRequestTimeout);

  // Inside a freeze the deadline wins even over the connect timeout.
  RbdBackend unreachable_in_freeze(config);
  const auto deadline = Clock::now() + limits::kThawMargin / 2;
  Result<std::vector<SnapshotRecord>> records =
      unreachable_in_freeze.Snapshot({MakeImage("b")}, "frozen", deadline);
  EXPECT_EQ(records.status().code(), Code::kTimeout) << records.status().ToString();
  EXPECT_LT(Clock::now(), deadline + limits::kThawMargin / 2);
  std::remove(conf.c_str());
}

}  // namespace
}  // namespace qb::arrays::rbd
