#include "guest-agent/windows/vss/provider_state_machine.h"

namespace qb::agent::win {

const char* HoldEndName(HoldEnd end) {
  switch (end) {
    case HoldEnd::kNotEnded:
      return "not-ended";
    case HoldEnd::kCommitted:
      return "committed";
    case HoldEnd::kAborted:
      return "aborted";
    case HoldEnd::kHoldLimit:
      return "hold-limit";
  }
  return "?";
}

const char* ProviderVerdictName(ProviderVerdict verdict) {
  switch (verdict) {
    case ProviderVerdict::kOk:
      return "ok";
    case ProviderVerdict::kNotOurSet:
      return "not-our-set";
    case ProviderVerdict::kBadState:
      return "bad-state";
    case ProviderVerdict::kAborted:
      return "aborted";
    case ProviderVerdict::kHoldLimit:
      return "hold-limit";
  }
  return "?";
}

const char* ProviderStateMachine::StateName(State state) {
  switch (state) {
    case State::kIdle:
      return "idle";
    case State::kPreparing:
      return "preparing";
    case State::kPrepared:
      return "prepared";
    case State::kPreCommitted:
      return "pre-committed";
    case State::kHolding:
      return "holding";
    case State::kCommitted:
      return "committed";
    case State::kAborted:
      return "aborted";
  }
  return "?";
}

ProviderStateMachine::ProviderStateMachine(HoldChannel& channel,
                                           std::chrono::milliseconds hold_limit)
    : channel_(channel), hold_limit_(hold_limit) {}

bool ProviderStateMachine::IsVolumeSupported(const std::string& /*volume*/) {
  return channel_.AnyArmed();
}

ProviderVerdict ProviderStateMachine::BeginPrepareSnapshot(const std::string& set_id,
                                                           const std::string& volume) {
  if (!channel_.IsArmed(set_id)) return ProviderVerdict::kNotOurSet;
  std::lock_guard lock(mu_);
  const bool new_set =
      state_ == State::kIdle || state_ == State::kCommitted || state_ == State::kAborted;
  if (new_set) {
    set_id_ = set_id;
    volumes_.clear();
    state_ = State::kPreparing;
  } else if (state_ != State::kPreparing || set_id_ != set_id) {
    return ProviderVerdict::kBadState;
  }
  volumes_.push_back(volume);
  return ProviderVerdict::kOk;
}

ProviderVerdict ProviderStateMachine::Advance(const std::string& set_id, State from, State to) {
  if (!channel_.IsArmed(set_id)) return ProviderVerdict::kNotOurSet;
  std::lock_guard lock(mu_);
  if (state_ != from || set_id_ != set_id) return ProviderVerdict::kBadState;
  state_ = to;
  return ProviderVerdict::kOk;
}

ProviderVerdict ProviderStateMachine::EndPrepareSnapshots(const std::string& set_id) {
  return Advance(set_id, State::kPreparing, State::kPrepared);
}

ProviderVerdict ProviderStateMachine::PreCommitSnapshots(const std::string& set_id) {
  return Advance(set_id, State::kPrepared, State::kPreCommitted);
}

ProviderVerdict ProviderStateMachine::CommitSnapshots(const std::string& set_id) {
  ProviderVerdict entered = Advance(set_id, State::kPreCommitted, State::kHolding);
  if (entered != ProviderVerdict::kOk) return entered;
  channel_.SignalHolding();
  const ReleaseOrder order = channel_.WaitRelease(hold_limit_);
  HoldEnd end = HoldEnd::kHoldLimit;
  ProviderVerdict verdict = ProviderVerdict::kHoldLimit;
  if (order == ReleaseOrder::kCommit) {
    end = HoldEnd::kCommitted;
    verdict = ProviderVerdict::kOk;
  } else if (order == ReleaseOrder::kAbort) {
    end = HoldEnd::kAborted;
    verdict = ProviderVerdict::kAborted;
  }
  {
    std::lock_guard lock(mu_);
    state_ = verdict == ProviderVerdict::kOk ? State::kCommitted : State::kAborted;
  }
  channel_.SignalHoldEnded(end);
  return verdict;
}

ProviderVerdict ProviderStateMachine::PostCommitSnapshots(const std::string& set_id) {
  std::lock_guard lock(mu_);
  if (state_ != State::kCommitted || set_id_ != set_id) return ProviderVerdict::kBadState;
  return ProviderVerdict::kOk;
}

ProviderVerdict ProviderStateMachine::AbortSnapshots(const std::string& set_id) {
  std::lock_guard lock(mu_);
  if (state_ == State::kHolding) return ProviderVerdict::kBadState;
  if (set_id_ == set_id && state_ != State::kIdle) state_ = State::kAborted;
  return ProviderVerdict::kOk;
}

ProviderStateMachine::State ProviderStateMachine::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

std::vector<std::string> ProviderStateMachine::volumes() const {
  std::lock_guard lock(mu_);
  return volumes_;
}

}  // namespace qb::agent::win
