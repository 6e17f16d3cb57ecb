// The provider channel across processes: the agent (requester side) and our provider DLL (in its
// COM+ host process, called by the VSS service) meet through named kernel events in the Global
// namespace, keyed by the snapshot set id:
//   Global\quiesce-bridge.vss.armed            exists while the agent has a set armed
//   Global\quiesce-bridge.vss.<set>.holding    provider -> agent: writes are held
//   Global\quiesce-bridge.vss.<set>.commit     agent -> provider: return success
//   Global\quiesce-bridge.vss.<set>.abort      agent -> provider: veto the set
//   Global\quiesce-bridge.vss.<set>.end.<how>  provider -> agent: how the hold ended
//   Global\quiesce-bridge.vss.<set>.alive      mutex the arming agent thread owns: abandoned
//                                               when the agent dies, and the provider lets go
// The agent creates every event on Arm() (so the provider, which only opens them, takes part
// only in sets the agent made) and closes them on Disarm(). All events are manual-reset.
// Platform file: the handles are kept behind an opaque pointer; no <windows.h> here.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "guest-agent/windows/vss/provider_hold.h"

namespace qb::agent::win {

// Event name prefix; tests use their own to run beside a real agent.
inline constexpr const char* kHoldEventPrefix = "Global\\quiesce-bridge.vss";

// The agent's side.
class NamedEventProviderLink final : public ProviderLink {
 public:
  explicit NamedEventProviderLink(std::string prefix = kHoldEventPrefix);
  ~NamedEventProviderLink() override;

  Status Arm(const std::string& set_id) override;
  bool WaitHolding(std::chrono::milliseconds timeout) override;
  void Release(bool commit) override;
  HoldEnd hold_end() override;
  HoldEnd WaitHoldEnd(std::chrono::milliseconds timeout) override;
  void Disarm() override;

 private:
  struct Events;
  std::string prefix_;
  std::mutex mu_;
  std::unique_ptr<Events> events_;
  bool released_ = false;
};

// The provider's side (in the DLL). Opens the agent's events per call; holds nothing between.
class NamedEventHoldChannel final : public HoldChannel {
 public:
  explicit NamedEventHoldChannel(std::string prefix = kHoldEventPrefix);
  ~NamedEventHoldChannel() override;

  bool IsArmed(const std::string& set_id) override;
  bool AnyArmed() override;
  void SignalHolding() override;
  ReleaseOrder WaitRelease(std::chrono::milliseconds limit) override;
  void SignalHoldEnded(HoldEnd end) override;

 private:
  std::string prefix_;
  std::mutex mu_;
  std::string set_id_;  // the set IsArmed() last confirmed
};

}  // namespace qb::agent::win
