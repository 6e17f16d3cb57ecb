#include "host-daemon/arrays/testing/fault_backend.h"

#include <gtest/gtest.h>

#include <future>

namespace qb::arrays::testing {
namespace {

using namespace std::chrono_literals;

const std::vector<LunSpec> kLuns = {{"fake", "vol-a", ""}, {"fake", "vol-b", ""}};

std::chrono::steady_clock::time_point In(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

TEST(FakeFaultBackendTest, SnapshotFindRemoveRoundTrip) {
  FakeFaultBackend backend;
  auto made = backend.Snapshot(kLuns, "job1", In(10s));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  ASSERT_EQ(made->size(), 2u);
  EXPECT_EQ((*made)[0].array_name, SnapshotName("job1", "vol-a"));
  auto found = backend.FindByKey(kLuns, "job1");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 2u);
  EXPECT_TRUE(backend.Remove((*made)[0]).ok());
  EXPECT_TRUE(backend.Remove((*made)[0]).ok());  // missing = success
  EXPECT_EQ(backend.AllSnapshots().size(), 1u);
  EXPECT_EQ(backend.counts().snapshot, 1);
  EXPECT_EQ(backend.counts().remove, 2);
}

TEST(FakeFaultBackendTest, PartialGroupFailureCleansUpOrLeavesLeftovers) {
  FakeFaultBackend backend;
  backend.SetFaults({.fail_after_luns = 1});
  auto cleaned = backend.Snapshot(kLuns, "job1", In(10s));
  EXPECT_EQ(cleaned.status().code(), Code::kArrayError);
  EXPECT_TRUE(backend.AllSnapshots().empty());

  backend.SetFaults({.fail_after_luns = 1, .leave_partial_leftovers = true});
  auto partial = backend.Snapshot(kLuns, "job2", In(10s));
  EXPECT_EQ(partial.status().code(), Code::kPartial);
  auto found = backend.FindByKey(kLuns, "job2");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 1u);
}

TEST(FakeFaultBackendTest, HonouredDeadlineCreatesNothing) {
  FakeFaultBackend backend;
  backend.SetFaults({.snapshot_delay = 60s});
  auto result = backend.Snapshot(kLuns, "job1", In(50ms));
  EXPECT_EQ(result.status().code(), Code::kTimeout);
  EXPECT_TRUE(backend.AllSnapshots().empty());
}

TEST(FakeFaultBackendTest, LateSnapshotLandsAfterTimeout) {
  FakeFaultBackend backend;
  backend.SetFaults(
      {.snapshot_delay = 300ms, .deadline_behaviour = DeadlineBehaviour::kTimeoutThenLandLater});
  auto result = backend.Snapshot(kLuns, "late", In(10ms));
  EXPECT_EQ(result.status().code(), Code::kTimeout);
  ASSERT_TRUE(backend.WaitForLateLandings(30s));
  auto found = backend.FindByKey(kLuns, "late");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 2u);
}

TEST(FakeFaultBackendTest, OverrunSucceedsPastDeadline) {
  FakeFaultBackend backend;
  backend.SetFaults(
      {.snapshot_delay = 100ms, .deadline_behaviour = DeadlineBehaviour::kOverrunAndSucceed});
  const auto deadline = In(1ms);
  auto result = backend.Snapshot(kLuns, "over", deadline);
  ASSERT_TRUE(result.ok());
  EXPECT_GT(std::chrono::steady_clock::now(), deadline);
}

TEST(FakeFaultBackendTest, GateGivesExplicitSynchronisation) {
  FakeFaultBackend backend;
  backend.CloseGate();
  auto call = std::async(std::launch::async, [&] { return backend.Snapshot(kLuns, "g", In(60s)); });
  ASSERT_TRUE(backend.WaitForSnapshotCalls(1, 30s));
  EXPECT_TRUE(backend.AllSnapshots().empty());
  backend.OpenGate();
  auto result = call.get();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(backend.AllSnapshots().size(), 2u);
}

TEST(FakeFaultBackendTest, PrepareRefusesWhenProjectionExceedsBudget) {
  FakeFaultBackend backend;
  backend.SetFaults({.projected_cut = 5s});
  EXPECT_EQ(backend.Prepare(kLuns, 1s).status().code(), Code::kTimeout);
  EXPECT_TRUE(backend.Prepare(kLuns, 10s).ok());
}

TEST(FakeFaultBackendTest, RestrictedVolumesAndBadKeys) {
  FakeFaultBackend backend;
  backend.RestrictVolumes({"vol-a"});
  EXPECT_TRUE(backend.Resolve(kLuns[0]).ok());
  EXPECT_EQ(backend.Resolve(kLuns[1]).code(), Code::kNotFound);
  EXPECT_EQ(backend.Snapshot(kLuns, "job1", In(10s)).status().code(), Code::kNotFound);
  EXPECT_TRUE(backend.AllSnapshots().empty());
  EXPECT_EQ(backend.Snapshot({kLuns[0]}, "bad-key", In(10s)).status().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace qb::arrays::testing
