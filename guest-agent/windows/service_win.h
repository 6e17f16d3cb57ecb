// Running the agent as a real Windows service (SCM): StartServiceCtrlDispatcher, a control
// handler feeding ServiceLifecycle, SetServiceStatus for every state.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"
#include "guest-agent/windows/service_lifecycle.h"

namespace qb::agent::win {

inline constexpr const char* kServiceName = "quiesce-agent";

// Connects to the SCM and runs `body` as service `name` (on the SCM's service thread). `body`
// calls lifecycle.Running() once it serves and returns the exit code when asked to stop
// (lifecycle's request_stop, set by `make_stop`, is called from the control handler).
// kUnsupported when the process was not started by the SCM (run with --console instead).
Status RunAsService(const std::string& name,
                    std::function<int(ServiceLifecycle& lifecycle,
                                      std::function<void(std::function<void()>)> set_stop)>
                        body);

}  // namespace qb::agent::win
