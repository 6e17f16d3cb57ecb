#include "common/crash_point.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace qb {
namespace {

// The death test's child re-reads nothing: the variable is set before the first call in it.
TEST(CrashPointDeathTest, ArmedPointKillsTheProcessWithSigkill) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("QB_CRASH_POINT", "other.point,record.after-rows", 1);
        CrashPoint("record.before-rows");  // not armed: returns
        CrashPoint("record.after-rows");
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "crash point record.after-rows");
}

TEST(CrashPointDeathTest, UnarmedPointsReturn) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("QB_CRASH_POINT", "record.after-rows", 1);
        CrashPoint("record.after");
        CrashPoint("record.after-rows-2");
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace qb
