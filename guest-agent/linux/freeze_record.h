// The crash record: what the agent has started for a freeze job, in its run directory (tmpfs
// /run by default, never a file system it freezes). Written before the first freeze hook
// starts and rewritten as each hook starts and finishes (an intent record), then with the
// mount points before the first FIFREEZE; after the last FITHAW it keeps only the hooks still
// owed a `thaw`, and it is removed once their thaw hooks ran. A restarted agent finds it,
// thaws the mount points, then runs `thaw` (recovery flag set) for every hook whose `freeze`
// started, before anything else; `quiesce-agent --thaw-all` does the same by hand.
//
// Format (text, one item per line, names and mount points with \n and \\ escaped):
//   quiesce-agent freeze record 2
//   job <job id>
//   hook-started <hook name>   (its `freeze` was started; in run order)
//   hook-done <hook name>      (its `freeze` finished, whatever its result)
//   mount <mount point>
// Version 1 (no hook lines) is still read: a record of an older agent.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace qb::agent {

struct FreezeRecord {
  std::string job_id;
  std::vector<std::string> mount_points;
  std::vector<std::string> hooks_started;  // freeze hooks whose `freeze` started, in run order
  std::vector<std::string> hooks_done;     // those whose `freeze` finished
  bool operator==(const FreezeRecord&) const = default;
};

class FreezeRecordFile {
 public:
  // `run_dir` is created (0700) on first Write if missing.
  explicit FreezeRecordFile(std::string run_dir);

  // Atomically replaces the record (write temp + rename). kIoError on failure.
  Status Write(const FreezeRecord& record) const;
  // The record, nullopt when there is none; kInvalidArgument if it is unreadable garbage.
  Result<std::optional<FreezeRecord>> Read() const;
  // Removes the record; a missing record is fine.
  Status Remove() const;

  std::string path() const { return run_dir_ + "/freeze-record"; }

 private:
  std::string run_dir_;
};

}  // namespace qb::agent
