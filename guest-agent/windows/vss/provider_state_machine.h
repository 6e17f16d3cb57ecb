// The VSS provider's logic, free of COM: the DLL's IVssSoftwareSnapshotProvider /
// IVssProviderCreateSnapshotSet methods forward here, and the tests drive it in-process.
//
// VSS calls a provider, per snapshot set: BeginPrepareSnapshot (once per volume),
// EndPrepareSnapshots, PreCommitSnapshots, CommitSnapshots (writes of every volume in the set
// are held while it runs), PostCommitSnapshots, and AbortSnapshots on any failure.
// This provider creates no snapshot of its own: the array does, while CommitSnapshots holds.
// CommitSnapshots signals "holding" to the requester and blocks until the requester releases it
// or kProviderHoldLimit passes (VSS would abort at kVssHoldWritesLimit; we let go earlier).
//
// Threading: VSS may call from several threads; every method is thread-safe. CommitSnapshots
// blocks its caller only.
#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "guest-agent/windows/vss/provider_hold.h"
#include "guest-agent/windows/windows_limits.h"

namespace qb::agent::win {

// What a provider method answers VSS (the DLL maps these to HRESULTs).
enum class ProviderVerdict : std::uint8_t {
  kOk,         // S_OK
  kNotOurSet,  // VSS_E_PROVIDER_VETO: a set our requester did not create
  kBadState,   // VSS_E_BAD_STATE: VSS called out of order
  kAborted,    // VSS_E_PROVIDER_VETO: the requester released with abort
  kHoldLimit,  // VSS_E_PROVIDER_VETO: nobody released the hold in time; writes resume
};

const char* ProviderVerdictName(ProviderVerdict verdict);

class ProviderStateMachine {
 public:
  enum class State : std::uint8_t {
    kIdle,          // no set in progress
    kPreparing,     // BeginPrepareSnapshot accepted at least one volume
    kPrepared,      // EndPrepareSnapshots
    kPreCommitted,  // PreCommitSnapshots
    kHolding,       // inside CommitSnapshots, writes held
    kCommitted,     // CommitSnapshots returned success
    kAborted,       // the set ended without success
  };

  // `channel` must outlive this object. `hold_limit` is the provider's own cap on a hold.
  explicit ProviderStateMachine(HoldChannel& channel,
                                std::chrono::milliseconds hold_limit = kProviderHoldLimit);

  // IsVolumeSupported: true only while our requester has a set armed.
  bool IsVolumeSupported(const std::string& volume);
  ProviderVerdict BeginPrepareSnapshot(const std::string& set_id, const std::string& volume);
  ProviderVerdict EndPrepareSnapshots(const std::string& set_id);
  ProviderVerdict PreCommitSnapshots(const std::string& set_id);
  // Blocks until released or the hold limit (see the file comment).
  ProviderVerdict CommitSnapshots(const std::string& set_id);
  ProviderVerdict PostCommitSnapshots(const std::string& set_id);
  // Always accepted; ends the set in any state but kHolding (VSS calls it after Commit returns).
  ProviderVerdict AbortSnapshots(const std::string& set_id);

  State state() const;
  std::vector<std::string> volumes() const;  // of the current / last set
  static const char* StateName(State state);

 private:
  ProviderVerdict Advance(const std::string& set_id, State from, State to);

  HoldChannel& channel_;
  const std::chrono::milliseconds hold_limit_;
  mutable std::mutex mu_;
  State state_ = State::kIdle;
  std::string set_id_;
  std::vector<std::string> volumes_;
};

}  // namespace qb::agent::win
