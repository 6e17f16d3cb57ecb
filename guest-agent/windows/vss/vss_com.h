// The real VSS behind the narrow seam (vss_com.cc): IVssBackupComponents for the requester.
// Not run here: VSS does not exist under Wine; compiled and linked in CI, run on real Windows.
#pragma once

#include <memory>

#include "common/status.h"
#include "guest-agent/windows/vss/vss_backup.h"

namespace qb::agent::win {

// Call once on the main thread before any VSS use: COM (MTA) and the process-wide COM security
// VSS needs to call the requester back.
Status InitializeComForVss();

// CreateVssBackupComponents per backup; every call initializes COM (MTA) on its thread first.
std::unique_ptr<VssBackupFactory> MakeComVssBackupFactory();

}  // namespace qb::agent::win
