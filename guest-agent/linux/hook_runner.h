// Freeze/thaw hooks: executables in a directory, run with one argument, "freeze" or "thaw" —
// the convention of qemu-guest-agent's fsfreeze-hook scripts, so existing scripts work.
//
// Order: `freeze` in name order (byte-wise strcmp of the file names) before any FIFREEZE;
// `thaw` in reverse name order after the last FITHAW. Names starting with '.' or ending in
// '~' and non-executable or non-regular files are ignored. Each hook gets the agent's
// environment plus QUIESCE_JOB_ID (always), QUIESCE_SNAPSHOT_OK=1/0 (thaw only) and
// QUIESCE_RECOVERY=1 (thaw only, when a restarted agent thaws for a predecessor that died
// between the hook's `freeze` and its `thaw`: the snapshot's fate is unknown), stdin
// from /dev/null, and stdout+stderr captured into one bounded buffer. A hook that outlives its
// timeout is killed with its whole process group (SIGKILL) and counts as failed.
//
// All functions block (they wait for child processes): call them on a worker thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "protocol/messages.h"

namespace qb::agent {

struct HookOptions {
  std::string dir;                       // hooks directory; missing directory = no hooks
  std::chrono::milliseconds timeout{0};  // per hook
  std::size_t max_output = 16 * 1024;    // bytes kept per hook (the rest is dropped, noted)
};

// The hook file names in name order. A missing directory is an empty list; an unreadable one
// fails with kIoError.
Result<std::vector<std::string>> ListHooks(const std::string& dir);

// Runs `dir/name phase` and reports it as a WriterResult (kind hook, phase set). ok is true only
// for exit status 0 within the timeout. `snapshot_ok` and `recovery` are exported for the thaw
// phase only.
proto::WriterResult RunHook(const HookOptions& options, const std::string& name,
                            const std::string& phase, const std::string& job_id, bool snapshot_ok,
                            bool recovery = false);

struct FreezeHooksRun {
  std::vector<proto::WriterResult> results;  // one per hook that ran, in run order
  std::vector<std::string> ran;              // names that ran `freeze` (even if it failed)
  bool ok = true;                            // every freeze hook succeeded
};

// Called (on the calling thread) just before a hook's `freeze` starts (finished false) and
// just after it ends (finished true): the crash record follows the hooks through it.
using HookProgress = std::function<void(const std::string& name, bool finished)>;

// Runs `freeze` hooks in name order, stopping at the first failure. `progress` may be empty.
FreezeHooksRun RunFreezeHooks(const HookOptions& options, const std::string& job_id,
                              const HookProgress& progress = {});

// Runs `thaw` for `names` (those that ran freeze) in reverse name order; all run even if one
// fails. `recovery`: a restarted agent thawing for its dead predecessor (QUIESCE_RECOVERY=1).
std::vector<proto::WriterResult> RunThawHooks(const HookOptions& options,
                                              std::vector<std::string> names,
                                              const std::string& job_id, bool snapshot_ok,
                                              bool recovery = false);

}  // namespace qb::agent
