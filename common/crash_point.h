// Named crash points: places in quiesced and quiesce-agent where a test can make the process
// die as if killed with SIGKILL, to prove what a crash at that exact step leaves behind.
//
// A point is named by job stage, `<stage>.<where>` (for example `record.after-rows`,
// `reflink.after-create`, `delete.after-array`). It is armed by the environment variable
// QB_CRASH_POINT, a comma-separated list of names read once at the first call. An armed point
// logs one line to stderr ("crash point NAME") and kills the process with SIGKILL: no
// destructors, no atexit handlers, no flush, exactly what `kill -9` would leave.
//
// Unarmed points cost one branch on a cached flag. Production never sets the variable; the
// names are listed with the tests that arm them (tests/daemon/crash_points_test.sh).
#pragma once

#include <string_view>

namespace qb {

inline constexpr std::string_view kCrashPointEnv = "QB_CRASH_POINT";

// Dies here when `name` is armed; returns otherwise. Thread-safe.
void CrashPoint(std::string_view name);

// True when `name` is armed (tests of the mechanism itself).
bool CrashPointArmed(std::string_view name);

}  // namespace qb
