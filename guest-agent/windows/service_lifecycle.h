// The Windows service's life as the SCM sees it, free of the SCM API so it can be tested:
// START_PENDING -> RUNNING -> (stop / shutdown control) STOP_PENDING -> STOPPED. A stop asks the
// agent to end (which thaws a held freeze) exactly once; interrogate re-reports the state.
// service_win.cc connects it to StartServiceCtrlDispatcher / SetServiceStatus.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

namespace qb::agent::win {

enum class ServiceState : std::uint8_t { kStartPending, kRunning, kStopPending, kStopped };
enum class ServiceControl : std::uint8_t { kStop, kShutdown, kPreshutdown, kInterrogate, kOther };

const char* ServiceStateName(ServiceState state);

class ServiceStatusSink {
 public:
  virtual ~ServiceStatusSink() = default;
  // SetServiceStatus. `accepts_stop` is false while starting and stopping.
  virtual void Report(ServiceState state, bool accepts_stop, std::uint32_t exit_code,
                      std::chrono::milliseconds wait_hint) = 0;
};

class ServiceLifecycle {
 public:
  // `sink` must outlive this object; `request_stop` is called once, from the control handler's
  // thread, and must only ask the agent to stop (post to its io_context), never block.
  ServiceLifecycle(ServiceStatusSink& sink, std::function<void()> request_stop);

  void Starting();
  void Running();
  // Returns true if the control was handled (SCM: NO_ERROR), false otherwise
  // (ERROR_CALL_NOT_IMPLEMENTED).
  bool OnControl(ServiceControl control);
  void Stopped(std::uint32_t exit_code);

  ServiceState state() const;

 private:
  void ReportLocked(std::uint32_t exit_code);

  ServiceStatusSink& sink_;
  std::function<void()> request_stop_;
  mutable std::mutex mu_;
  ServiceState state_ = ServiceState::kStopped;
  bool stop_requested_ = false;
};

}  // namespace qb::agent::win
