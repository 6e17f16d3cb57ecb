// Runs a program with bytes on stdin and collects stdout/stderr under a deadline. Private to
// the exec backend. POSIX only (fork/exec), so it lives in this folder's .cc.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace qb::arrays::exec {

struct ScriptOutput {
  int exit_code = -1;       // exit status, or -signal when killed by a signal
  std::string stdout_text;  // at most the cap given to RunScript
  std::string stderr_text;  // at most the cap given to RunScript
  bool stdout_truncated = false;
};

// The whole environment of every script run: nothing of the daemon's own (no
// CREDENTIALS_DIRECTORY, no NOTIFY_SOCKET, no proxy settings) reaches the script.
std::vector<std::string> ScriptEnvironment();

// Checks that `path` is safe for the daemon to run: every directory the path's lookup passes
// through (following each symlink, chain by chain) and the file it names are owned by root or
// by the daemon's effective user, and not writable by group or others, and the file is a
// regular file. A sticky group- or world-writable directory owned by root (/tmp) is passed
// through: others can add names there but cannot rename or remove root's entries, and every
// entry (symlinks too) must itself be owned by root or the daemon's user. kPermissionDenied
// naming the offending path and why; kNotFound / kIoError when a component cannot be examined.
// BLOCKING (a few lstat calls); thread-safe.
Status CheckTrustedProgram(const std::string& path);

// Runs `program` (no arguments) in its own process group, with exactly the environment
// `environment` ("NAME=value" entries), writes `input` to its stdin, closes
// it, and reads stdout and stderr until both close and the process exits. When `deadline`
// passes first, the whole process group gets SIGKILL and the result is kTimeout (message
// carries the stderr seen so far). kIoError if it cannot be started. BLOCKING; thread-safe.
Result<ScriptOutput> RunScript(const std::string& program,
                               const std::vector<std::string>& environment,
                               const std::string& input,
                               std::chrono::steady_clock::time_point deadline,
                               std::size_t max_stdout, std::size_t max_stderr);

}  // namespace qb::arrays::exec
