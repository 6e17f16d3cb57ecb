// Runs a program with bytes on stdin and collects stdout/stderr under a deadline. Private to
// the exec backend. POSIX only (fork/exec), so it lives in this folder's .cc.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace qb::arrays::exec {

struct ScriptOutput {
  int exit_code = -1;       // exit status, or -signal when killed by a signal
  std::string stdout_text;  // at most the cap given to RunScript
  std::string stderr_text;  // at most the cap given to RunScript
  bool stdout_truncated = false;
};

// Runs `program` (no arguments) in its own process group, writes `input` to its stdin, closes
// it, and reads stdout and stderr until both close and the process exits. When `deadline`
// passes first, the whole process group gets SIGKILL and the result is kTimeout (message
// carries the stderr seen so far). kIoError if it cannot be started. BLOCKING; thread-safe.
Result<ScriptOutput> RunScript(const std::string& program, const std::string& input,
                               std::chrono::steady_clock::time_point deadline,
                               std::size_t max_stdout, std::size_t max_stderr);

}  // namespace qb::arrays::exec
