#include "host-daemon/arrays/reflink/reflink_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "common/unique_fd.h"
#include "host-daemon/arrays/reflink/reflink_test_fs.h"

namespace qb::arrays::reflink {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr std::size_t kBlock = 4096;

// Writes `byte` over [offset, offset + length) of `path`, creating the file if needed.
void Fill(const std::string& path, off_t offset, std::size_t length, char byte) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT, 0600));
  ASSERT_TRUE(fd.valid()) << path;
  const std::string data(length, byte);
  ASSERT_EQ(::pwrite(fd.get(), data.data(), data.size(), offset),
            static_cast<ssize_t>(data.size()));
  ASSERT_EQ(::fsync(fd.get()), 0);
}

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::chrono::steady_clock::time_point In(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

// Runs every test on XFS (reflink=1) and on btrfs, each a loop-mounted image in a temp dir.
class ReflinkBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void TearDownTestSuite() { mounts_.clear(); }

  void SetUp() override {
    auto& mount = mounts_[GetParam()];
    if (!mount) mount = std::make_unique<testing::ScratchMount>(GetParam());
    if (!mount->mounted()) {
      GTEST_SKIP() << "cannot loop-mount " << GetParam() << " here (needs root, mkfs)";
    }
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = mount->path() + "/" + name;
    fs::create_directory(dir_);
    lun_a_ = dir_ + "/lun-a.raw";
    lun_b_ = dir_ + "/lun-b.raw";
    Fill(lun_a_, 0, 64 * kBlock, 'a');
    Fill(lun_b_, 0, 64 * kBlock, 'b');
    backend_ = MakeReflinkBackend({});
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::vector<LunSpec> Luns() const { return {{"reflink", lun_a_, ""}, {"reflink", lun_b_, ""}}; }

  static std::map<std::string, std::unique_ptr<testing::ScratchMount>> mounts_;
  std::string dir_, lun_a_, lun_b_;
  std::unique_ptr<ArrayBackend> backend_;
};
std::map<std::string, std::unique_ptr<testing::ScratchMount>> ReflinkBackendTest::mounts_;

TEST_P(ReflinkBackendTest, SnapshotHoldsCutTimeContentAndLaterWritesDoNotLeak) {
  ASSERT_TRUE(backend_->Resolve(Luns()[0]).ok()) << backend_->Resolve(Luns()[0]).ToString();
  const std::string before_a = Contents(lun_a_);
  auto made = backend_->Snapshot(Luns(), "job1", In(30s));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ASSERT_EQ(made->size(), 2u);
  EXPECT_EQ((*made)[0].array_name, dir_ + "/.qb-snapshots/qb-job1-lun-a.raw");
  EXPECT_EQ((*made)[0].job_key, "job1");
  EXPECT_EQ(Contents((*made)[0].array_name), before_a);

  Fill(lun_a_, 3 * kBlock, kBlock, 'X');  // after the cut
  EXPECT_NE(Contents(lun_a_), before_a);
  EXPECT_EQ(Contents((*made)[0].array_name), before_a);
  EXPECT_EQ(Contents((*made)[1].array_name), std::string(64 * kBlock, 'b'));
  EXPECT_EQ(fs::status((*made)[0].array_name).permissions(),
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_P(ReflinkBackendTest, SnapshotIsNeverCreatedTwice) {
  ASSERT_TRUE(backend_->Snapshot(Luns(), "job1", In(30s)).ok());
  auto again = backend_->Snapshot(Luns(), "job1", In(30s));
  EXPECT_EQ(again.status().code(), Code::kConflict);
  // The failed retry removed nothing it did not create.
  EXPECT_EQ(backend_->FindByKey(Luns(), "job1")->size(), 2u);
}

TEST_P(ReflinkBackendTest, FindAfterCrashWithNewBackendObject) {
  ASSERT_TRUE(backend_->Snapshot(Luns(), "crashy", In(30s)).ok());
  ASSERT_TRUE(backend_->Snapshot({Luns()[0]}, "other", In(30s)).ok());
  backend_.reset();  // the "daemon" dies

  auto restarted = MakeReflinkBackend({});
  auto found = restarted->FindByKey(Luns(), "crashy");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].lun, lun_a_);
  EXPECT_EQ((*found)[1].lun, lun_b_);
  EXPECT_TRUE(restarted->FindByKey(Luns(), "never")->empty());

  auto listed = restarted->List(Luns()[0]);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);  // crashy + other, not lun-b's
  std::set<std::string> keys = {(*listed)[0].job_key, (*listed)[1].job_key};
  EXPECT_EQ(keys, (std::set<std::string>{"crashy", "other"}));
}

TEST_P(ReflinkBackendTest, RemoveIsIdempotentAndRefusesForeignFiles) {
  auto made = backend_->Snapshot(Luns(), "job1", In(30s));
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(backend_->Remove((*made)[0]).ok());
  EXPECT_FALSE(fs::exists((*made)[0].array_name));
  EXPECT_TRUE(backend_->Remove((*made)[0]).ok());
  EXPECT_EQ(backend_->FindByKey(Luns(), "job1")->size(), 1u);

  SnapshotRecord foreign{
      .lun = lun_a_, .array_name = lun_b_, .job_key = "job1", .backend = "reflink", .created = {}};
  EXPECT_EQ(backend_->Remove(foreign).code(), Code::kInvalidArgument);
  EXPECT_TRUE(fs::exists(lun_b_));
}

TEST_P(ReflinkBackendTest, CloneExposesAWritableIndependentCopy) {
  auto made = backend_->Snapshot({Luns()[0]}, "job1", In(30s));
  ASSERT_TRUE(made.ok());
  auto clone = backend_->Clone((*made)[0], "exposed.raw");
  ASSERT_TRUE(clone.ok()) << clone.status().ToString();
  EXPECT_EQ(*clone, dir_ + "/exposed.raw");
  EXPECT_EQ(Contents(*clone), Contents((*made)[0].array_name));
  Fill(*clone, 0, kBlock, 'Z');
  EXPECT_EQ(Contents((*made)[0].array_name), std::string(64 * kBlock, 'a'));
  EXPECT_EQ(backend_->Clone((*made)[0], "exposed.raw").status().code(), Code::kConflict);
  EXPECT_EQ(backend_->Clone((*made)[0], "../escape.raw").status().code(), Code::kInvalidArgument);
}

TEST_P(ReflinkBackendTest, RollbackRestoresTheLunInPlace) {
  auto made = backend_->Snapshot({Luns()[0]}, "job1", In(30s));
  ASSERT_TRUE(made.ok());
  const auto inode_before = fs::hard_link_count(lun_a_);
  Fill(lun_a_, 0, 128 * kBlock, 'Q');  // overwrite and grow
  ASSERT_TRUE(backend_->Rollback((*made)[0]).ok());
  EXPECT_EQ(Contents(lun_a_), std::string(64 * kBlock, 'a'));
  EXPECT_EQ(fs::hard_link_count(lun_a_), inode_before);
  ASSERT_TRUE(backend_->Remove((*made)[0]).ok());
  EXPECT_EQ(backend_->Rollback((*made)[0]).code(), Code::kNotFound);
}

TEST_P(ReflinkBackendTest, DeadlineAlreadyPastCreatesNothing) {
  auto late = backend_->Snapshot(Luns(), "late", std::chrono::steady_clock::now() - 1ms);
  EXPECT_EQ(late.status().code(), Code::kTimeout);
  EXPECT_TRUE(backend_->FindByKey(Luns(), "late")->empty());
}

TEST_P(ReflinkBackendTest, FailureMidGroupRemovesWhatWasCreated) {
  std::vector<LunSpec> luns = Luns();
  luns.push_back({"reflink", dir_ + "/missing.raw", ""});
  auto result = backend_->Snapshot(luns, "mid", In(30s));
  EXPECT_EQ(result.status().code(), Code::kNotFound);
  EXPECT_TRUE(backend_->FindByKey(Luns(), "mid")->empty());
}

TEST_P(ReflinkBackendTest, ResolveErrors) {
  EXPECT_EQ(backend_->Resolve({"reflink", dir_ + "/nope.raw", ""}).code(), Code::kNotFound);
  EXPECT_EQ(backend_->Resolve({"reflink", "relative.raw", ""}).code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Resolve({"reflink", dir_, ""}).code(), Code::kUnsupported);
  EXPECT_EQ(backend_->Snapshot(Luns(), "bad-key", In(30s)).status().code(), Code::kInvalidArgument);
}

TEST_P(ReflinkBackendTest, PrepareCountsExtentsAndRefusesWhatCannotFit) {
  // A fragmented LUN: every other block written, so each written block is its own extent.
  const std::string fragmented = dir_ + "/fragmented.raw";
  for (int i = 0; i < 400; ++i) Fill(fragmented, static_cast<off_t>(2 * i * kBlock), kBlock, 'f');
  auto records = CountExtentRecords(fragmented);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  // 400 written extents; XFS may add an unwritten (preallocated) record per gap.
  EXPECT_GE(*records, 390u);
  EXPECT_LE(*records, 800u);

  const std::vector<LunSpec> luns = {{"reflink", fragmented, ""}, Luns()[0]};
  auto report = backend_->Prepare(luns, 10s);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->extent_counts.size(), 2u);
  EXPECT_EQ(report->extent_counts[0].second, *records);
  EXPECT_GT(report->projected_cut, 0ms);
  EXPECT_TRUE(report->warnings.empty());

  auto tight = backend_->Prepare(luns, 1ms);
  EXPECT_EQ(tight.status().code(), Code::kTimeout);
  EXPECT_NE(tight.status().message().find("extent records"), std::string::npos);
  auto close = backend_->Prepare(luns, report->projected_cut + 1ms);
  ASSERT_TRUE(close.ok());
  EXPECT_FALSE(close->warnings.empty());
}

INSTANTIATE_TEST_SUITE_P(FileSystems, ReflinkBackendTest, ::testing::Values("xfs", "btrfs"),
                         [](const auto& info) { return info.param; });

TEST(ReflinkProjectionTest, FollowsMeasuredFiguresAndGrowsMonotonically) {
  EXPECT_EQ(ProjectCloneTime(100), 500us);
  EXPECT_EQ(ProjectCloneTime(1'000), 5ms);
  EXPECT_EQ(ProjectCloneTime(10'000), 400ms);
  EXPECT_EQ(ProjectCloneTime(100'000), 4500ms);
  EXPECT_GT(ProjectCloneTime(200'000), 4500ms);
  std::chrono::microseconds previous{0};
  for (uint64_t n : {0u, 1u, 50u, 101u, 999u, 5000u, 50'000u, 1'000'000u}) {
    EXPECT_GE(ProjectCloneTime(n), previous) << n;
    previous = ProjectCloneTime(n);
  }
}

TEST(ReflinkUnsupportedTest, NonReflinkFileSystemIsAClearUnsupportedError) {
  testing::ScratchMount tmpfs("tmpfs");
  if (!tmpfs.mounted()) GTEST_SKIP() << "cannot mount tmpfs here";
  const std::string lun = tmpfs.path() + "/lun.raw";
  Fill(lun, 0, 16 * kBlock, 't');
  auto backend = MakeReflinkBackend({});
  const Status resolved = backend->Resolve({"reflink", lun, ""});
  EXPECT_EQ(resolved.code(), Code::kUnsupported) << resolved.ToString();
  EXPECT_NE(resolved.message().find("reflink"), std::string::npos) << resolved.ToString();
  auto snapshot =
      backend->Snapshot({{"reflink", lun, ""}}, "job1", std::chrono::steady_clock::now() + 30s);
  EXPECT_EQ(snapshot.status().code(), Code::kUnsupported) << snapshot.status().ToString();
  EXPECT_TRUE(backend->FindByKey({{"reflink", lun, ""}}, "job1")->empty());
}

}  // namespace
}  // namespace qb::arrays::reflink
