// Windows agent time limits, all derived from common/time_limits.h (no new magic durations).
#pragma once

#include "common/time_limits.h"

namespace qb::agent::win {

// The provider's CommitSnapshots holds writes at most this long, whatever the requester does:
// VSS aborts the set at kVssHoldWritesLimit, we let go a margin before it.
inline constexpr std::chrono::milliseconds kProviderHoldLimit =
    limits::kVssHoldWritesLimit - limits::kVssHoldMargin;

// The lease the agent grants when the host asks for none, and the cap on any lease: a freeze
// never outlives what VSS can hold.
inline constexpr std::chrono::milliseconds kDefaultLease = limits::kWindowsMaxLease;

// How often the requester polls the DoSnapshotSet async (QueryStatus) while it waits for the
// provider to signal frozen: fine enough that a failed set is seen well inside the hold margin.
inline constexpr std::chrono::milliseconds kSnapshotSetPoll = limits::kVssHoldMargin / 30;

// The longest the requester waits for DoSnapshotSet to finish after it released the provider,
// and for Cancel to take effect: VSS's own writer timeout bounds it.
inline constexpr std::chrono::milliseconds kSnapshotSetFinishLimit = limits::kVssWriterFreezeLimit;

// How long the service waits for a pipe / port / listener that failed before reopening it.
inline constexpr std::chrono::milliseconds kTransportRetry = limits::kReconnectBackoffMin;

// What the service tells the SCM a stop may take: ending a held freeze (release, Cancel,
// AbortBackup) is bounded by VSS's own writer timeout.
inline constexpr std::chrono::milliseconds kServiceStopWaitHint = limits::kVssWriterFreezeLimit;

static_assert(kProviderHoldLimit < limits::kVssHoldWritesLimit);
static_assert(kDefaultLease <= kProviderHoldLimit, "the lease ends before the provider lets go");

}  // namespace qb::agent::win
