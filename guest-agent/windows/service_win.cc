#include "guest-agent/windows/service_win.h"

// clang-format off
#include <windows.h>
// clang-format on

#include <mutex>

namespace qb::agent::win {

namespace {

DWORD ToScmState(ServiceState s) {
  switch (s) {
    case ServiceState::kStartPending:
      return SERVICE_START_PENDING;
    case ServiceState::kRunning:
      return SERVICE_RUNNING;
    case ServiceState::kStopPending:
      return SERVICE_STOP_PENDING;
    case ServiceState::kStopped:
      return SERVICE_STOPPED;
  }
  return SERVICE_STOPPED;
}

class ScmStatusSink final : public ServiceStatusSink {
 public:
  explicit ScmStatusSink(SERVICE_STATUS_HANDLE handle) : handle_(handle) {}
  void Report(ServiceState state, bool accepts_stop, std::uint32_t exit_code,
              std::chrono::milliseconds wait_hint) override {
    std::lock_guard lock(mu_);
    SERVICE_STATUS s{};
    s.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    s.dwCurrentState = ToScmState(state);
    s.dwControlsAccepted = accepts_stop ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    s.dwWin32ExitCode = exit_code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
    s.dwServiceSpecificExitCode = exit_code;
    s.dwCheckPoint =
        state == ServiceState::kRunning || state == ServiceState::kStopped ? 0 : ++checkpoint_;
    s.dwWaitHint = static_cast<DWORD>(wait_hint.count());
    SetServiceStatus(handle_, &s);
  }

 private:
  SERVICE_STATUS_HANDLE handle_;
  std::mutex mu_;
  DWORD checkpoint_ = 0;
};

// The SCM calls ServiceMain without a context argument: the one service this process hosts
// is reached through this pointer, set by RunAsService for the dispatcher's lifetime.
struct Hosted {
  std::string name;
  std::function<int(ServiceLifecycle&, std::function<void(std::function<void()>)>)> body;
  ServiceLifecycle* lifecycle = nullptr;
  std::function<void()> stop;
  std::mutex mu;
};
Hosted* g_hosted = nullptr;

DWORD WINAPI ControlHandler(DWORD control, DWORD, LPVOID, LPVOID context) {
  auto* lifecycle = static_cast<ServiceLifecycle*>(context);
  ServiceControl c = ServiceControl::kOther;
  if (control == SERVICE_CONTROL_STOP) c = ServiceControl::kStop;
  if (control == SERVICE_CONTROL_SHUTDOWN) c = ServiceControl::kShutdown;
  if (control == SERVICE_CONTROL_PRESHUTDOWN) c = ServiceControl::kPreshutdown;
  if (control == SERVICE_CONTROL_INTERROGATE) c = ServiceControl::kInterrogate;
  return lifecycle->OnControl(c) ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

void WINAPI ServiceMain(DWORD, LPSTR*) {
  Hosted& hosted = *g_hosted;
  // The lifecycle's stop hook forwards to whatever the body installs.
  auto forward_stop = [&hosted] {
    std::function<void()> stop;
    {
      std::lock_guard lock(hosted.mu);
      stop = hosted.stop;
    }
    if (stop) stop();
  };
  SERVICE_STATUS_HANDLE handle = nullptr;
  ScmStatusSink* sink_ptr = nullptr;
  // The lifecycle must exist before the handler can be called; the sink needs the handle.
  struct LateSink final : ServiceStatusSink {
    ScmStatusSink** target;
    void Report(ServiceState s, bool a, std::uint32_t e, std::chrono::milliseconds w) override {
      if (*target) (*target)->Report(s, a, e, w);
    }
  } late;
  late.target = &sink_ptr;
  ServiceLifecycle lifecycle(late, forward_stop);
  handle = RegisterServiceCtrlHandlerExA(hosted.name.c_str(), ControlHandler, &lifecycle);
  if (!handle) return;
  ScmStatusSink sink(handle);
  sink_ptr = &sink;
  lifecycle.Starting();
  auto set_stop = [&hosted](std::function<void()> stop) {
    std::lock_guard lock(hosted.mu);
    hosted.stop = std::move(stop);
  };
  const int code = hosted.body(lifecycle, set_stop);
  lifecycle.Stopped(static_cast<std::uint32_t>(code));
}

}  // namespace

Status RunAsService(
    const std::string& name,
    std::function<int(ServiceLifecycle&, std::function<void(std::function<void()>)>)> body) {
  Hosted hosted;
  hosted.name = name;
  hosted.body = std::move(body);
  g_hosted = &hosted;
  SERVICE_TABLE_ENTRYA table[] = {{hosted.name.data(), ServiceMain}, {nullptr, nullptr}};
  const BOOL ok = StartServiceCtrlDispatcherA(table);
  const DWORD err = GetLastError();
  g_hosted = nullptr;
  if (!ok) {
    if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
      return Error(Code::kUnsupported, "not started by the service control manager");
    }
    return Error(Code::kIoError, "StartServiceCtrlDispatcher: error " + std::to_string(err));
  }
  return Status::Ok();
}

}  // namespace qb::agent::win
