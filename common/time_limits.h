// Every time limit of the product, in one place. Host budgets are derived from these constants;
// nothing else in the tree spells a duration that matters for the freeze window.
#pragma once

#include <chrono>

namespace qb::limits {

using namespace std::chrono_literals;

// --- Guest-side holds imposed by the platform -------------------------------------------------
// VSS lets a provider hold writes (CommitSnapshots) for at most 10 s before it aborts the set.
inline constexpr std::chrono::milliseconds kVssHoldWritesLimit = 10s;
// VSS writers must finish Freeze -> Thaw within 60 s (their own timeout).
inline constexpr std::chrono::milliseconds kVssWriterFreezeLimit = 60s;
// Exchange's writer gives up after 20 s.
inline constexpr std::chrono::milliseconds kExchangeWriterLimit = 20s;
// The provider releases writes this long before the VSS hold limit, whatever the host says.
inline constexpr std::chrono::milliseconds kVssHoldMargin = 1500ms;

// --- The freeze lease --------------------------------------------------------------------------
// Default lease a Linux agent grants when the host asks for none; also the Linux cap default.
inline constexpr std::chrono::milliseconds kDefaultLease = 10s;
// Hard upper bound on any lease an agent will grant, whatever its config says.
inline constexpr std::chrono::milliseconds kMaxLease = 60s;
// Windows: the lease never exceeds what VSS can hold.
inline constexpr std::chrono::milliseconds kWindowsMaxLease = kVssHoldWritesLimit - kVssHoldMargin;

// --- Host budgets inside a lease -----------------------------------------------------------------
// Time the host keeps free at the end of a lease for the Thaw to travel and be acted on.
inline constexpr std::chrono::milliseconds kThawMargin = 1s;
// The array call's deadline is the lease minus the time already spent freezing minus this.
inline constexpr std::chrono::milliseconds kArrayCallMargin = kThawMargin;

// --- Agent-side steps ----------------------------------------------------------------------------
inline constexpr std::chrono::milliseconds kDefaultHookTimeout = 30s;
// How long the agent waits for a thaw-guard to confirm it holds the file systems.
inline constexpr std::chrono::milliseconds kGuardStartTimeout = 5s;

// --- Links
// -----------------------------------------------------------------------------------------
inline constexpr std::chrono::milliseconds kHelloTimeout = 5s;
inline constexpr std::chrono::milliseconds kRequestTimeout = 10s;
inline constexpr std::chrono::milliseconds kHeartbeatInterval = 15s;
inline constexpr std::chrono::milliseconds kReconnectBackoffMin = 200ms;
inline constexpr std::chrono::milliseconds kReconnectBackoffMax = 30s;
// A Freeze reply must arrive within the lease (the agent answers Frozen or Error before then).
inline constexpr std::chrono::milliseconds kFreezeReplySlack = 2s;

// --- Control socket
// A control client with no request in flight is closed after this long, so idle clients
// cannot hold the session slots. A request in flight (a snapshot job) is never timed out here.
inline constexpr std::chrono::milliseconds kControlIdleTimeout = 30s;
// At the session cap, how long the daemon waits for a new client's request to answer it "busy".
inline constexpr std::chrono::milliseconds kControlBusyReplyWait = 2s;

static_assert(kWindowsMaxLease < kVssHoldWritesLimit, "Windows lease must stay inside VSS hold");
static_assert(kDefaultLease <= kMaxLease);
static_assert(kArrayCallMargin < kDefaultLease);

}  // namespace qb::limits
