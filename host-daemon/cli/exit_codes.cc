#include "host-daemon/cli/exit_codes.h"

#include "common/status.h"

namespace qb::cli {

int ExitCodeForError(std::uint16_t code) {
  switch (static_cast<Code>(code)) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kGuestUnreachable:
      return kExitGuestUnreachable;
    case Code::kArrayError:
      return kExitArrayError;
    case Code::kBusy:
      return kExitBusy;
    case Code::kNotFound:
      return kExitNotFound;
    default:
      return kExitOther;
  }
}

int ExitCodeForJob(const proto::JobReport& report) {
  if (report.error_code == 0 && report.consistency == "application-consistent") return kExitOk;
  switch (static_cast<Code>(report.error_code)) {
    case Code::kInvalidArgument:
    case Code::kGuestUnreachable:
    case Code::kArrayError:
    case Code::kBusy:
    case Code::kNotFound:
      return ExitCodeForError(report.error_code);
    default:
      // Timeout, a freeze that did not hold, a lying or dying agent, shutdown: whatever was
      // taken is not application-consistent.
      return kExitNotApplicationConsistent;
  }
}

}  // namespace qb::cli
