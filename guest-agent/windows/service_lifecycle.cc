#include "guest-agent/windows/service_lifecycle.h"

#include "guest-agent/windows/windows_limits.h"

namespace qb::agent::win {

const char* ServiceStateName(ServiceState state) {
  switch (state) {
    case ServiceState::kStartPending:
      return "start-pending";
    case ServiceState::kRunning:
      return "running";
    case ServiceState::kStopPending:
      return "stop-pending";
    case ServiceState::kStopped:
      return "stopped";
  }
  return "?";
}

ServiceLifecycle::ServiceLifecycle(ServiceStatusSink& sink, std::function<void()> request_stop)
    : sink_(sink), request_stop_(std::move(request_stop)) {}

void ServiceLifecycle::ReportLocked(std::uint32_t exit_code) {
  const bool pending =
      state_ == ServiceState::kStartPending || state_ == ServiceState::kStopPending;
  sink_.Report(state_, state_ == ServiceState::kRunning, exit_code,
               pending ? kServiceStopWaitHint : std::chrono::milliseconds(0));
}

void ServiceLifecycle::Starting() {
  std::lock_guard lock(mu_);
  state_ = ServiceState::kStartPending;
  ReportLocked(0);
}

void ServiceLifecycle::Running() {
  std::lock_guard lock(mu_);
  if (stop_requested_) return;  // a stop overtook the start: stay stop-pending
  state_ = ServiceState::kRunning;
  ReportLocked(0);
}

bool ServiceLifecycle::OnControl(ServiceControl control) {
  std::function<void()> stop;
  {
    std::lock_guard lock(mu_);
    switch (control) {
      case ServiceControl::kInterrogate:
        ReportLocked(0);
        return true;
      case ServiceControl::kStop:
      case ServiceControl::kShutdown:
      case ServiceControl::kPreshutdown:
        if (state_ == ServiceState::kStopped) return true;
        state_ = ServiceState::kStopPending;
        ReportLocked(0);
        if (!stop_requested_) {
          stop_requested_ = true;
          stop = request_stop_;
        }
        break;
      case ServiceControl::kOther:
        return false;
    }
  }
  if (stop) stop();
  return true;
}

void ServiceLifecycle::Stopped(std::uint32_t exit_code) {
  std::lock_guard lock(mu_);
  state_ = ServiceState::kStopped;
  ReportLocked(exit_code);
}

ServiceState ServiceLifecycle::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

}  // namespace qb::agent::win
