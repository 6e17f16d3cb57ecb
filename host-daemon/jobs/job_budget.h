// The time budget of a snapshot job, derived only from the named limits (common/time_limits.h).
//
//   Freeze sent ----- lease granted by the agent (counted from its receipt of Freeze) ----->|
//   |-- freeze --|-- array call: deadline = freeze sent + lease - kArrayCallMargin --|-thaw-|
//
// The host counts the lease from the moment it SENT Freeze, which is no later than the agent's
// receipt, so the array deadline always falls inside the agent's lease, kArrayCallMargin before
// its end (the time kept for the Thaw to travel and be acted on).
#pragma once

#include <algorithm>
#include <chrono>

#include "common/time_limits.h"
#include "protocol/messages.h"

namespace qb::jobs {

// The lease a job asks for when the request names none.
inline constexpr std::chrono::milliseconds kJobDefaultLease = limits::kDefaultLease;

static_assert(limits::kArrayCallMargin < limits::kWindowsMaxLease,
              "the array call must have time inside even the shortest (Windows) lease");

// The lease to request: `requested` (0 = default), capped at kMaxLease, and for Windows guests
// at kWindowsMaxLease (VSS cannot hold writes longer). Never below kArrayCallMargin * 2 so the
// array call has some time at all.
inline std::chrono::milliseconds JobLease(std::chrono::milliseconds requested, proto::OsFamily os) {
  auto lease = requested.count() == 0 ? kJobDefaultLease : requested;
  lease = std::min(lease, limits::kMaxLease);
  if (os == proto::OsFamily::kWindows) lease = std::min(lease, limits::kWindowsMaxLease);
  return std::max(lease, 2 * limits::kArrayCallMargin);
}

// The time the array call may take inside `lease` (what Prepare() is told).
inline constexpr std::chrono::milliseconds SnapshotBudget(std::chrono::milliseconds lease) {
  return lease - limits::kArrayCallMargin;
}

// How long to wait for Frozen: the agent answers within the lease (or thaws and says so).
inline constexpr std::chrono::milliseconds FreezeReplyTimeout(std::chrono::milliseconds lease) {
  return lease + limits::kFreezeReplySlack;
}

}  // namespace qb::jobs
