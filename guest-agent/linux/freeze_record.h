// The crash record: what the agent is about to freeze, written to its run directory (tmpfs
// /run by default, never a file system it freezes) before the first FIFREEZE and removed after
// the last FITHAW. A restarted agent finds it and thaws those mount points before anything
// else; `quiesce-agent --thaw-all` does the same by hand.
//
// Format (text, one item per line, mount points with \n and \\ escaped):
//   quiesce-agent freeze record 1
//   job <job id>
//   mount <mount point>
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace qb::agent {

struct FreezeRecord {
  std::string job_id;
  std::vector<std::string> mount_points;
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
