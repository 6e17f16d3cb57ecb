// The channel between the requester (in the agent) and our VSS provider (a DLL loaded by the
// VSS service): the provider tells the requester when it holds writes (CommitSnapshots entered)
// and waits in CommitSnapshots until the requester releases it or its hold limit passes.
//
// Two sides of one channel:
//   ProviderLink  the requester's side (agent process);
//   HoldChannel   the provider's side (the DLL, or the fake VSS in tests).
// Implementations: InProcessHold (both sides in one process: tests, FakeVss) and the named
// kernel events of provider_link_win.h (agent <-> VSS service process).
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace qb::agent::win {

// How a provider's hold of writes ended.
enum class HoldEnd : std::uint8_t {
  kNotEnded,   // not held yet, or still holding
  kCommitted,  // released by the requester with commit: CommitSnapshots returned success
  kAborted,    // released by the requester with abort: CommitSnapshots vetoed the set
  kHoldLimit,  // nobody released it within the hold limit: the provider let go on its own
};

const char* HoldEndName(HoldEnd end);

// What the provider waiting in CommitSnapshots was told.
enum class ReleaseOrder : std::uint8_t { kCommit, kAbort, kTimeout };

class ProviderLink {
 public:
  virtual ~ProviderLink() = default;

  // Lets the provider take part in snapshot set `set_id` (and in no set we did not create).
  // Resets the channel's previous state. Fails with kIoError when the channel cannot be made.
  virtual Status Arm(const std::string& set_id) = 0;
  // True once the provider holds writes for the armed set; false if `timeout` passed first.
  virtual bool WaitHolding(std::chrono::milliseconds timeout) = 0;
  // Lets the provider return from CommitSnapshots: `commit` true -> success, false -> veto.
  // Idempotent (the first call decides); safe from any thread, also before the hold began.
  virtual void Release(bool commit) = 0;
  // How the hold ended so far (kNotEnded while holding or before).
  virtual HoldEnd hold_end() = 0;
  // Waits up to `timeout` for a hold that began to end; returns how it ended (kNotEnded if it
  // is still held, or never began).
  virtual HoldEnd WaitHoldEnd(std::chrono::milliseconds timeout) = 0;
  // Ends participation in the armed set. Idempotent.
  virtual void Disarm() = 0;
};

class HoldChannel {
 public:
  virtual ~HoldChannel() = default;

  // True if our requester armed `set_id`; the provider vetoes every other set.
  virtual bool IsArmed(const std::string& set_id) = 0;
  // True if any set is armed (IsVolumeSupported: stay out of other requesters' sets).
  virtual bool AnyArmed() = 0;
  // Tells the requester writes are held now.
  virtual void SignalHolding() = 0;
  // Blocks until the requester releases the hold or `limit` passes (kTimeout).
  virtual ReleaseOrder WaitRelease(std::chrono::milliseconds limit) = 0;
  // Tells the requester how the hold ended.
  virtual void SignalHoldEnded(HoldEnd end) = 0;
};

}  // namespace qb::agent::win
