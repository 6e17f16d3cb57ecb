// quiesce-agent configuration: /etc/quiesce-agent/agent.toml (packaging/agent/agent.toml is the
// commented sample). Every key is optional; an unknown key or a value of the wrong type is an
// error naming the key, so a typo never silently falls back to a default.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"
#include "common/time_limits.h"

namespace qb::agent {

struct AgentConfig {
  // [transport]
  bool virtio_serial = true;
  std::string port_name = "org.quiesce-bridge.agent.0";
  bool vsock = false;
  unsigned vsock_port = 4470;
  std::string unix_path;  // "" = no unix socket
  // [freeze]
  std::chrono::milliseconds default_lease = limits::kDefaultLease;
  std::chrono::milliseconds lease_cap = limits::kDefaultLease;  // clamped to kMaxLease
  std::string run_dir = "/run/quiesce-agent";
  // [hooks]
  std::string hooks_dir = "/etc/quiesce-agent/hooks.d";
  std::chrono::milliseconds hook_timeout = limits::kDefaultHookTimeout;
  // [log]
  std::string log_level = "info";
  std::string log_file;  // "" = stderr only (journald)
};

// Parses TOML text. kInvalidArgument on syntax errors (with line), unknown keys, wrong types and
// out-of-range values, naming the key ("freeze.lease_cap_ms: ...").
Result<AgentConfig> ParseAgentConfig(const std::string& toml_text);

// Reads and parses `path`. A missing file is kNotFound.
Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace qb::agent
