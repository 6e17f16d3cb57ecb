#include "guest-agent/windows/vss/in_process_hold.h"

namespace qb::agent::win {

Status InProcessHold::Arm(const std::string& set_id) {
  if (set_id.empty()) return Error(Code::kInvalidArgument, "empty snapshot set id");
  std::lock_guard lock(mu_);
  armed_set_ = set_id;
  holding_ = false;
  held_ = false;
  release_commit_.reset();
  end_ = HoldEnd::kNotEnded;
  return Status::Ok();
}

bool InProcessHold::WaitHolding(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return held_; });
}

void InProcessHold::Release(bool commit) {
  std::lock_guard lock(mu_);
  if (!release_commit_) release_commit_ = commit;
  cv_.notify_all();
}

HoldEnd InProcessHold::hold_end() {
  std::lock_guard lock(mu_);
  return end_;
}

HoldEnd InProcessHold::WaitHoldEnd(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !held_ || end_ != HoldEnd::kNotEnded; });
  return end_;
}

void InProcessHold::Disarm() {
  std::lock_guard lock(mu_);
  armed_set_.clear();
  cv_.notify_all();
}

bool InProcessHold::IsArmed(const std::string& set_id) {
  std::lock_guard lock(mu_);
  return !armed_set_.empty() && armed_set_ == set_id;
}

bool InProcessHold::AnyArmed() {
  std::lock_guard lock(mu_);
  return !armed_set_.empty();
}

void InProcessHold::SignalHolding() {
  std::lock_guard lock(mu_);
  holding_ = true;
  held_ = true;
  cv_.notify_all();
}

ReleaseOrder InProcessHold::WaitRelease(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, limit, [&] { return release_commit_.has_value(); })) {
    return ReleaseOrder::kTimeout;
  }
  return *release_commit_ ? ReleaseOrder::kCommit : ReleaseOrder::kAbort;
}

void InProcessHold::SignalHoldEnded(HoldEnd end) {
  std::lock_guard lock(mu_);
  holding_ = false;
  end_ = end;
  cv_.notify_all();
}

bool InProcessHold::holding() {
  std::lock_guard lock(mu_);
  return holding_;
}

}  // namespace qb::agent::win
