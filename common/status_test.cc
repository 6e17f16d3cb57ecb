#include "common/status.h"

#include <gtest/gtest.h>

#include "common/time_limits.h"

namespace qb {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Error(Code::kInvalidArgument, "odd");
  return x / 2;
}

Status Chain(int x) {
  auto r = Half(x);
  QB_RETURN_IF_ERROR(r.status());
  return Status::Ok();
}

TEST(Status, ValuesAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  auto r = Half(4);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 2);
  auto e = Half(3);
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(e.status().ToString(), "invalid-argument: odd");
  EXPECT_EQ(Chain(3).code(), Code::kInvalidArgument);
  EXPECT_EQ(Error(Code::kTimeout, "x").WithContext("freeze /a").ToString(),
            "timeout: freeze /a: x");
}

TEST(Status, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(Code::kPartial); ++c) {
    EXPECT_NE(CodeName(static_cast<Code>(c)), "unknown") << c;
  }
}

TEST(TimeLimits, HostBudgetsFitInsideGuestLimits) {
  using namespace limits;
  EXPECT_LT(kWindowsMaxLease, kVssHoldWritesLimit);
  EXPECT_LE(kVssHoldWritesLimit, kExchangeWriterLimit);
  EXPECT_LE(kExchangeWriterLimit, kVssWriterFreezeLimit);
  EXPECT_GT(kDefaultLease - kArrayCallMargin, std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace qb
