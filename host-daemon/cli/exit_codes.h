// quiescectl's documented, stable exit codes (host-daemon/cli/README.md). Scripts rely on them:
// values are never renumbered.
#pragma once

#include <cstdint>

#include "protocol/control_messages.h"

namespace qb::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitOther = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotApplicationConsistent = 3;
inline constexpr int kExitGuestUnreachable = 4;
inline constexpr int kExitArrayError = 5;
inline constexpr int kExitBusy = 6;
inline constexpr int kExitNotFound = 7;

// The exit code for a failed request with qb::Code `code`.
int ExitCodeForError(std::uint16_t code);
// The exit code for a snapshot job's report.
int ExitCodeForJob(const proto::JobReport& report);

}  // namespace qb::cli
