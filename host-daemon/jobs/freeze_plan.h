// Planning a guest's freeze set from the host's LUNs and the guest's inventory.
//
// The host decides what is snapshotted (GuestSpec::luns). The guest's inventory is used only
// to find which of ITS volumes lie on those LUNs, so they can be frozen: a guest that lies in
// its inventory can make its own snapshot less consistent, never add a LUN.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "host-daemon/jobs/guest_registry.h"
#include "protocol/messages.h"

namespace qb::jobs {

struct FreezePlan {
  std::vector<std::string> freeze_volumes;  // volumes to freeze (Inventory volume names)
  std::vector<std::string> not_covered;     // volumes wholly on disks that are not snapshotted
  std::vector<std::string> partial;         // volumes spanning both (only with allow_partial)
  std::vector<std::string> warnings;
};

// Lower-case hex without "0x" / "naa." prefixes or separators, for comparing WWNs.
std::string NormalizeWwn(const std::string& wwn);

// The freeze set: every volume whose disks are all snapshotted LUNs. A guest disk is a
// snapshotted LUN when its WWN equals a LUN's wwn, or spec.disk_map maps its name to a LUN.
// Fails with kInvalidArgument when a LUN matches no guest disk (its content could not be
// frozen), when a volume spans snapshotted and other disks and !allow_partial, or when
// nothing would be frozen; kUnsupported when a volume on the LUNs cannot be frozen.
Result<FreezePlan> PlanFreeze(const GuestSpec& spec, const proto::Inventory& inventory,
                              bool allow_partial);

}  // namespace qb::jobs
