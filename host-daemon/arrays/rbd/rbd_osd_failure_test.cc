// The OSD stops while a snapshot is in flight: the backend must answer by the deadline with a
// clear error (so the daemon can thaw the guest in time), and nothing may block a worker forever.
// Runs on a cluster of its own (ctest fixture qb_ceph_cluster_osd): stopping the only memstore
// OSD for good loses the cluster's data. The cases run in order in one process: first the OSD is
// paused (SIGSTOP) and resumed, then it is killed.
#include <gtest/gtest.h>

#include <cstdlib>

#include "host-daemon/arrays/rbd/rbd_backend.h"
#include "host-daemon/arrays/rbd/test_cluster.h"

namespace qb::arrays::rbd {
namespace {

using Clock = std::chrono::steady_clock;
using testing::ClusterConfig;
using testing::ClusterDir;
using testing::TestCluster;

// librados gives up on an operation after this long here: short, so the test does not wait the
// production default per stuck operation.
constexpr std::chrono::milliseconds kTestOpTimeout = 3 * limits::kThawMargin;
// The array call's deadline inside the (simulated) freeze.
constexpr std::chrono::milliseconds kSnapshotDeadline = 2 * limits::kThawMargin;
// How late an answer may be after its deadline on a noisy 2-core machine: the backend answers
// from a condition variable, so anything close to this means it waited on librbd instead.
constexpr std::chrono::milliseconds kAnswerSlack = limits::kThawMargin;

RbdConfig FastFailingConfig() {
  RbdConfig config = ClusterConfig();
  config.op_timeout = kTestOpTimeout;
  config.connect_timeout = kTestOpTimeout;
  return config;
}

void SignalOsd(const char* action) {
  const std::string command =
      std::string(QB_CEPH_CLUSTER_SCRIPT) + " " + action + " '" + ClusterDir() + "'";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

struct Timed {
  Result<std::vector<SnapshotRecord>> result;
  std::chrono::milliseconds took;
};

Timed SnapshotWithDeadline(RbdBackend& backend, const std::vector<LunSpec>& luns,
                           const std::string& key) {
  const auto start = Clock::now();
  Result<std::vector<SnapshotRecord>> result =
      backend.Snapshot(luns, key, start + kSnapshotDeadline);
  return Timed{std::move(result),
               std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)};
}

class RbdOsdFailureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<std::unique_ptr<TestCluster>> cluster = TestCluster::Connect(FastFailingConfig());
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster).release();
    for (const char* name : {"osd-a", "osd-b", "osd-c"}) {
      ASSERT_TRUE(cluster_->CreateImage(name).ok());
    }
    backend_ = new RbdBackend(FastFailingConfig());
  }
  static void TearDownTestSuite() {
    const auto start = Clock::now();
    delete backend_;  // joins librbd calls still stuck on the dead OSD
    delete cluster_;
    std::printf(
        "backend and cluster handles closed in %lld ms\n",
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
  }

  static inline TestCluster* cluster_ = nullptr;
  static inline RbdBackend* backend_ = nullptr;
  const LunSpec a_{"rbd", "rbd/osd-a", ""};
  const LunSpec b_{"rbd", "rbd/osd-b", ""};
  const LunSpec c_{"rbd", "rbd/osd-c", ""};
};

TEST_F(RbdOsdFailureTest, PausedOsdGivesATimeoutByTheDeadlineAndTheLateSnapshotIsFound) {
  ASSERT_TRUE(backend_->Prepare({a_}, kSnapshotDeadline).ok());
  ASSERT_TRUE(backend_->Prepare({b_, c_}, kSnapshotDeadline).ok());
  ASSERT_TRUE(backend_->Snapshot({a_}, "healthy", Clock::now() + kSnapshotDeadline).ok());

  SignalOsd("osd-pause");
  const Timed single = SnapshotWithDeadline(*backend_, {a_}, "paused1");
  const Timed group = SnapshotWithDeadline(*backend_, {b_, c_}, "paused2");
  SignalOsd("osd-resume");

  for (const Timed* timed : {&single, &group}) {
    ASSERT_FALSE(timed->result.ok());
    EXPECT_EQ(timed->result.status().code(), Code::kTimeout) << timed->result.status().ToString();
    EXPECT_GE(timed->took, kSnapshotDeadline);
    EXPECT_LT(timed->took, kSnapshotDeadline + kAnswerSlack);
    std::printf("snapshot with the OSD paused answered in %lld ms: %s\n",
                static_cast<long long>(timed->took.count()),
                timed->result.status().ToString().c_str());
  }

  // The calls go on after the OSD resumes; FindByKey waits for them and then sees what landed
  // (the calls may also have given up on the librados op timeout: then nothing landed).
  for (const auto& [luns, key] :
       {std::pair<std::vector<LunSpec>, std::string>{{a_}, "paused1"}, {{b_, c_}, "paused2"}}) {
    const auto start = Clock::now();
    Result<std::vector<SnapshotRecord>> found = backend_->FindByKey(luns, key);
    ASSERT_TRUE(found.ok()) << found.status().ToString();
    std::printf(
        "FindByKey(%s) after resume: %zu record(s) in %lld ms\n", key.c_str(), found->size(),
        static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
    EXPECT_TRUE(found->empty() || found->size() == luns.size());
    for (const SnapshotRecord& record : *found) EXPECT_TRUE(backend_->Remove(record).ok());
    Result<std::vector<SnapshotRecord>> again = backend_->FindByKey(luns, key);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->empty());
  }
  // The cluster works again.
  EXPECT_TRUE(backend_->Snapshot({a_}, "resumed", Clock::now() + kSnapshotDeadline).ok());
  EXPECT_TRUE(backend_->Snapshot({b_, c_}, "resumed", Clock::now() + kSnapshotDeadline).ok());
}

TEST_F(RbdOsdFailureTest, KilledOsdGivesATimeoutByTheDeadlineAndNothingBlocksForever) {
  SignalOsd("osd-kill");
  cluster_->Abandon();  // its data died with the memstore OSD

  const Timed single = SnapshotWithDeadline(*backend_, {a_}, "killed1");
  const Timed group = SnapshotWithDeadline(*backend_, {b_, c_}, "killed2");
  for (const Timed* timed : {&single, &group}) {
    ASSERT_FALSE(timed->result.ok());
    EXPECT_EQ(timed->result.status().code(), Code::kTimeout) << timed->result.status().ToString();
    EXPECT_LT(timed->took, kSnapshotDeadline + kAnswerSlack);
  }
  // Everything else is bounded by the librados op timeout: a clear error, not a hang.
  const auto start = Clock::now();
  Result<std::vector<SnapshotRecord>> found = backend_->FindByKey({a_}, "killed1");
  const auto took = Clock::now() - start;
  ASSERT_FALSE(found.ok());
  std::printf(
      "FindByKey with the OSD dead: %s after %lld ms\n", found.status().ToString().c_str(),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_LT(took, kRbdSettleLimit);
}

}  // namespace
}  // namespace qb::arrays::rbd
