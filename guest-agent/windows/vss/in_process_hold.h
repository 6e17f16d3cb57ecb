// Both sides of the provider channel in one process (mutex + condition variable): the fake VSS
// and the provider state machine tests use it; the real agent uses named events instead
// (provider_link_win.h) because the provider runs inside the VSS service.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "guest-agent/windows/vss/provider_hold.h"

namespace qb::agent::win {

class InProcessHold final : public ProviderLink, public HoldChannel {
 public:
  // ProviderLink
  Status Arm(const std::string& set_id) override;
  bool WaitHolding(std::chrono::milliseconds timeout) override;
  void Release(bool commit) override;
  HoldEnd hold_end() override;
  HoldEnd WaitHoldEnd(std::chrono::milliseconds timeout) override;
  void Disarm() override;

  // HoldChannel
  bool IsArmed(const std::string& set_id) override;
  bool AnyArmed() override;
  void SignalHolding() override;
  ReleaseOrder WaitRelease(std::chrono::milliseconds limit) override;
  void SignalHoldEnded(HoldEnd end) override;

  // For tests: whether a hold is in progress right now.
  bool holding();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string armed_set_;  // "" when disarmed
  bool holding_ = false;
  bool held_ = false;  // SignalHolding happened for the armed set
  std::optional<bool> release_commit_;
  HoldEnd end_ = HoldEnd::kNotEnded;
};

}  // namespace qb::agent::win
