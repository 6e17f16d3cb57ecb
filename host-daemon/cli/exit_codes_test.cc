#include "host-daemon/cli/exit_codes.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace qb::cli {
namespace {

std::uint16_t C(Code c) { return static_cast<std::uint16_t>(c); }

TEST(ExitCodes, StableValues) {
  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitOther, 1);
  EXPECT_EQ(kExitUsage, 2);
  EXPECT_EQ(kExitNotApplicationConsistent, 3);
  EXPECT_EQ(kExitGuestUnreachable, 4);
  EXPECT_EQ(kExitArrayError, 5);
  EXPECT_EQ(kExitBusy, 6);
  EXPECT_EQ(kExitNotFound, 7);
}

TEST(ExitCodes, Jobs) {
  proto::JobReport ok;
  ok.consistency = "application-consistent";
  EXPECT_EQ(ExitCodeForJob(ok), kExitOk);
  proto::JobReport crash;
  crash.consistency = "crash-consistent";
  crash.error_code = C(Code::kPartial);
  EXPECT_EQ(ExitCodeForJob(crash), kExitNotApplicationConsistent);
  proto::JobReport timeout;
  timeout.error_code = C(Code::kTimeout);
  EXPECT_EQ(ExitCodeForJob(timeout), kExitNotApplicationConsistent);
  proto::JobReport busy;
  busy.error_code = C(Code::kBusy);
  EXPECT_EQ(ExitCodeForJob(busy), kExitBusy);
  proto::JobReport down;
  down.error_code = C(Code::kGuestUnreachable);
  EXPECT_EQ(ExitCodeForJob(down), kExitGuestUnreachable);
  proto::JobReport array;
  array.error_code = C(Code::kArrayError);
  EXPECT_EQ(ExitCodeForJob(array), kExitArrayError);
  // An application-consistent label with an error code is not trusted as success.
  proto::JobReport odd;
  odd.consistency = "application-consistent";
  odd.error_code = C(Code::kTimeout);
  EXPECT_EQ(ExitCodeForJob(odd), kExitNotApplicationConsistent);
}

TEST(ExitCodes, Errors) {
  EXPECT_EQ(ExitCodeForError(C(Code::kNotFound)), kExitNotFound);
  EXPECT_EQ(ExitCodeForError(C(Code::kInvalidArgument)), kExitUsage);
  EXPECT_EQ(ExitCodeForError(C(Code::kPermissionDenied)), kExitOther);
}

}  // namespace
}  // namespace qb::cli
