#include "host-daemon/jobs/job_budget.h"

#include <gtest/gtest.h>

namespace qb::jobs {
namespace {

using namespace std::chrono_literals;

TEST(JobBudget, LeaseDerivesFromTheNamedLimits) {
  EXPECT_EQ(JobLease(0ms, proto::OsFamily::kLinux), limits::kDefaultLease);
  EXPECT_EQ(JobLease(3s, proto::OsFamily::kLinux), 3s);
  EXPECT_EQ(JobLease(10min, proto::OsFamily::kLinux), limits::kMaxLease);
  // Windows: never longer than VSS can hold writes, minus the provider's margin.
  EXPECT_EQ(JobLease(0ms, proto::OsFamily::kWindows),
            std::min(limits::kDefaultLease, limits::kWindowsMaxLease));
  EXPECT_EQ(JobLease(30s, proto::OsFamily::kWindows), limits::kWindowsMaxLease);
  EXPECT_LT(JobLease(30s, proto::OsFamily::kWindows), limits::kVssHoldWritesLimit);
  // A tiny request still leaves the array call some time inside the lease.
  EXPECT_GT(SnapshotBudget(JobLease(1ms, proto::OsFamily::kLinux)), 0ms);
}

TEST(JobBudget, ArrayBudgetEndsAMarginBeforeTheLease) {
  for (auto lease : {2s, 10s, 60s}) {
    EXPECT_EQ(SnapshotBudget(lease) + limits::kArrayCallMargin, lease);
    EXPECT_EQ(FreezeReplyTimeout(lease), lease + limits::kFreezeReplySlack);
  }
}

}  // namespace
}  // namespace qb::jobs
