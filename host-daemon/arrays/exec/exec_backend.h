// The `exec` backend: drives any array through an administrator's script. For every operation
// the daemon runs the script once, writes one JSON request to its stdin, and reads one JSON
// answer from its stdout. The contract (operations, fields, error codes) is in README.md here.
//
// Limits: each run has a timeout (ExecOptions::timeout, and for snapshot the job's deadline,
// whichever comes first); on expiry the script's whole process group is killed (SIGKILL) and
// the call fails with kTimeout. stdout is capped at kMaxAnswerBytes, stderr at kMaxStderrBytes;
// stderr is put into error messages (trimmed) so admins see why their script failed.
//
// Trust: the script runs as the daemon's user (root). At startup and before every run, the
// file and every directory on its path (symlinks followed, each hop checked) must be owned by
// root (or the daemon's user) and not writable by group or others: otherwise whoever can
// write there could run code as root. The script's environment is exactly ScriptEnvironment()
// (PATH=/usr/sbin:/usr/bin:/sbin:/bin, LANG=C.UTF-8); nothing of the daemon's own reaches it.
//
// Group semantics are the script's: capabilities.atomic_group says whether its snapshot of a
// group is one atomic cut. The daemon still makes Snapshot all-or-nothing: after any failure
// it asks the script to find and remove what the job key created.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "common/time_limits.h"
#include "host-daemon/arrays/backend.h"

namespace qb::arrays::exec {

// Default per-run timeout: one control request's time limit.
inline constexpr std::chrono::milliseconds kDefaultScriptTimeout = qb::limits::kRequestTimeout;
inline constexpr std::size_t kMaxAnswerBytes = 1 << 20;
inline constexpr std::size_t kMaxStderrBytes = 16 << 10;
// The protocol version sent in every request ("version") and expected in capabilities.
inline constexpr int kExecProtocolVersion = 1;

struct ExecOptions {
  std::string name = "exec";  // registered backend name
  std::string script;         // absolute path of an executable; run with no arguments
  std::chrono::milliseconds timeout = kDefaultScriptTimeout;
};

// Runs the script's "capabilities" operation once and builds the backend with the answer.
// kInvalidArgument: script path not absolute / not executable. kPermissionDenied: the script
// or a directory on its path may be written by someone other than root (message names it). Any
// failure of the run itself (timeout, garbage, error answer) is returned as is, so a misconfigured
// script stops startup with a clear message instead of failing the first job.
Result<std::unique_ptr<ArrayBackend>> MakeExecBackend(const ExecOptions& options);

}  // namespace qb::arrays::exec
