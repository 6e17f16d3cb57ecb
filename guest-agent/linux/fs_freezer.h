// FIFREEZE / FITHAW on a set of mounted file systems, addressed by mount point.
//
// The kernel allows one freeze per superblock: a second FIFREEZE fails with EBUSY, and FITHAW
// of a file system that is not frozen fails with EINVAL. Both are reported, never hidden:
// EBUSY means someone else holds a freeze (kAlreadyFrozen), EINVAL on thaw means somebody
// thawed behind our back (the freeze window was not held).
//
// All methods block (FIFREEZE flushes the file system and may take long under heavy I/O):
// call them on a worker thread, never on the io thread.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace qb::agent {

// What happened to one file system on thaw.
struct ThawOutcome {
  std::string mount_point;
  bool was_frozen = false;  // FITHAW succeeded: it was still frozen by us
  Status status;            // ok when thawed or found not frozen; kIoError otherwise
};

struct SkippedMount {
  std::string mount_point;
  std::string reason;
};

class FsFreezeSet {
 public:
  // Opens every mount point directory (O_RDONLY | O_DIRECTORY | O_CLOEXEC). `mount_points`
  // must be in mount order (parents first); freezing goes in reverse order, thawing forward.
  // Fails with kNotFound / kIoError naming the mount point that could not be opened.
  static Result<FsFreezeSet> Open(std::vector<std::string> mount_points);

  FsFreezeSet(FsFreezeSet&&) = default;
  FsFreezeSet& operator=(FsFreezeSet&&) = default;

  // Descriptors of the opened mount points, in mount order. Valid while this set lives; the
  // thaw guard duplicates them across fork().
  std::vector<int> fds() const;
  const std::vector<std::string>& mount_points() const { return mount_points_; }

  // Freezes in reverse mount order. File systems that do not support freezing (EOPNOTSUPP)
  // are skipped and listed in `*skipped`. EBUSY fails with kAlreadyFrozen, any other error
  // with kIoError; in both cases every file system this call froze is thawed again first.
  Status FreezeAll(std::vector<SkippedMount>* skipped);

  // Thaws, in mount order, the file systems FreezeAll froze (not the skipped ones). Never
  // fails as a whole: each outcome says whether that file system was still frozen.
  std::vector<ThawOutcome> ThawAll();

  // True after FreezeAll succeeded until ThawAll.
  bool frozen() const { return !frozen_indices_.empty(); }
  // Mount points FreezeAll froze, in mount order.
  std::vector<std::string> frozen_mount_points() const;

 private:
  FsFreezeSet() = default;
  std::vector<std::string> mount_points_;
  std::vector<UniqueFd> fds_;
  std::vector<std::size_t> frozen_indices_;  // ascending
};

// One-shot FITHAW of a mount point by path (crash recovery, --thaw-all). was_frozen false when
// the kernel said it was not frozen (EINVAL) or the path could not be opened (status says).
ThawOutcome ThawMountPoint(const std::string& mount_point);

// FIFREEZE / FITHAW on an already open descriptor. Freeze: kUnsupported for EOPNOTSUPP,
// kAlreadyFrozen for EBUSY, kIoError otherwise. Thaw: see ThawOutcome.
Status FreezeFd(int fd, const std::string& mount_point);
ThawOutcome ThawFd(int fd, const std::string& mount_point);

}  // namespace qb::agent
