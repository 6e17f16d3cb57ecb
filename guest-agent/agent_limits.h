// Agent-side time limits derived from common/time_limits.h (no new magic durations).
#pragma once

#include "common/time_limits.h"

namespace qb::agent {

// A virtio-serial port with no host connected reads EOF at once; the agent waits this long
// before reading again (never spins).
inline constexpr std::chrono::milliseconds kPortIdlePoll = limits::kReconnectBackoffMin;

// How long the agent waits before reopening a port or listener that failed.
inline constexpr std::chrono::milliseconds kTransportRetry = limits::kReconnectBackoffMin;

}  // namespace qb::agent
