// One quiesced per state directory (and per control socket): an exclusive flock(2) on a lock
// file, held for the life of the process. A second daemon on the same configuration must not
// remove the live one's control socket, reconcile (close) the live one's running jobs, or thaw
// guests the live one froze. The kernel drops the lock when the process dies, kill -9 included:
// a crashed daemon never leaves a stale lock.
#pragma once

#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace qb::quiesced {

class InstanceLock {
 public:
  // Opens (creating, mode 0600) `path` and takes an exclusive, non-blocking flock on it, then
  // writes this process's pid into it (for the error message of the next one). kBusy when
  // another process holds it ("another quiesced (pid N) holds PATH"); kIoError when the file
  // cannot be opened or locked. The parent directory must exist.
  static Result<InstanceLock> Acquire(const std::string& path);

  InstanceLock(InstanceLock&&) = default;
  InstanceLock& operator=(InstanceLock&&) = default;
  // Releases the lock (closing the file); the file itself stays (removing it would race with a
  // daemon starting meanwhile, which could then lock a file nobody else sees).
  ~InstanceLock() = default;

  const std::string& path() const { return path_; }

 private:
  InstanceLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
};

}  // namespace qb::quiesced
