#include "host-daemon/arrays/backend.h"

#include <gtest/gtest.h>

namespace qb::arrays {
namespace {

TEST(JobKeyTest, AcceptsPlainKeysAndRejectsOthers) {
  EXPECT_TRUE(ValidateJobKey("job_20261123T015300.vm1").ok());
  EXPECT_EQ(ValidateJobKey("").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateJobKey(".hidden").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateJobKey("a-b").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateJobKey("a/b").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateJobKey(std::string(65, 'k')).code(), Code::kInvalidArgument);
  EXPECT_TRUE(ValidateJobKey(std::string(64, 'k')).ok());
}

TEST(SnapshotNameTest, IsDeterministicAndParsesBack) {
  EXPECT_EQ(SnapshotName("j1", "lun0.raw"), "qb-j1-lun0.raw");
  EXPECT_EQ(SnapshotName("j1", "pool/img a"), "qb-j1-pool_img_a");
  EXPECT_EQ(JobKeyOfSnapshotName(SnapshotName("j1", "lun-with-dashes")), "j1");
  EXPECT_EQ(JobKeyOfSnapshotName("qb-j1-"), "");
  EXPECT_EQ(JobKeyOfSnapshotName("qb-j1"), "");
  EXPECT_EQ(JobKeyOfSnapshotName("xx-j1-lun"), "");
  EXPECT_EQ(JobKeyOfSnapshotName("qb-.x-lun"), "");
}

class NamedBackend final : public ArrayBackend {
 public:
  explicit NamedBackend(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  Capabilities capabilities() const override { return {}; }
  Status Resolve(const LunSpec&) override { return Status::Ok(); }
  Result<PrepareReport> Prepare(const std::vector<LunSpec>&, std::chrono::milliseconds) override {
    return PrepareReport{};
  }
  Result<std::vector<SnapshotRecord>> Snapshot(const std::vector<LunSpec>&, const std::string&,
                                               std::chrono::steady_clock::time_point) override {
    return std::vector<SnapshotRecord>{};
  }
  Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>&,
                                                const std::string&) override {
    return std::vector<SnapshotRecord>{};
  }
  Result<std::vector<SnapshotRecord>> List(const LunSpec&) override {
    return std::vector<SnapshotRecord>{};
  }
  Status Remove(const SnapshotRecord&) override { return Status::Ok(); }
  Result<std::string> Clone(const SnapshotRecord&, const std::string&) override {
    return Error(Code::kUnsupported, "no");
  }
  Status Rollback(const SnapshotRecord&) override { return Error(Code::kUnsupported, "no"); }

 private:
  std::string name_;
};

TEST(BackendSetTest, FindsByNameAndRefusesDuplicates) {
  BackendSet set;
  ASSERT_TRUE(set.Add(std::make_unique<NamedBackend>("b")).ok());
  ASSERT_TRUE(set.Add(std::make_unique<NamedBackend>("a")).ok());
  EXPECT_EQ(set.Add(std::make_unique<NamedBackend>("a")).code(), Code::kConflict);
  EXPECT_EQ(set.Add(nullptr).code(), Code::kInvalidArgument);
  ASSERT_NE(set.Find("a"), nullptr);
  EXPECT_EQ(set.Find("a")->name(), "a");
  EXPECT_EQ(set.Find("c"), nullptr);
  EXPECT_EQ(set.Names(), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace qb::arrays
