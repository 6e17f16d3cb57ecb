#include "guest-agent/linux/fs_freezer.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace qb::agent {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

}  // namespace

Status FreezeFd(int fd, const std::string& mount_point) {
  if (::ioctl(fd, FIFREEZE, 0) == 0) return Status::Ok();
  int err = errno;
  if (err == EOPNOTSUPP) {
    return Error(Code::kUnsupported, mount_point + ": file system does not support freezing");
  }
  if (err == EBUSY) {
    return Error(Code::kAlreadyFrozen, mount_point + ": already frozen by someone else");
  }
  return Error(Code::kIoError, mount_point + ": FIFREEZE: " + ErrnoText(err));
}

ThawOutcome ThawFd(int fd, const std::string& mount_point) {
  ThawOutcome outcome;
  outcome.mount_point = mount_point;
  if (::ioctl(fd, FITHAW, 0) == 0) {
    outcome.was_frozen = true;
    return outcome;
  }
  int err = errno;
  if (err != EINVAL) {
    outcome.status = Error(Code::kIoError, mount_point + ": FITHAW: " + ErrnoText(err));
  }
  return outcome;
}

Result<FsFreezeSet> FsFreezeSet::Open(std::vector<std::string> mount_points) {
  FsFreezeSet set;
  for (const auto& path : mount_points) {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return Error(err == ENOENT ? Code::kNotFound : Code::kIoError,
                   path + ": open: " + ErrnoText(err));
    }
    set.fds_.emplace_back(fd);
  }
  set.mount_points_ = std::move(mount_points);
  return set;
}

std::vector<int> FsFreezeSet::fds() const {
  std::vector<int> out;
  for (const auto& fd : fds_) out.push_back(fd.get());
  return out;
}

std::vector<std::string> FsFreezeSet::frozen_mount_points() const {
  std::vector<std::string> out;
  for (auto i : frozen_indices_) out.push_back(mount_points_[i]);
  return out;
}

Status FsFreezeSet::FreezeAll(std::vector<SkippedMount>* skipped) {
  std::vector<std::size_t> frozen_now;
  for (std::size_t k = fds_.size(); k-- > 0;) {
    Status status = FreezeFd(fds_[k].get(), mount_points_[k]);
    if (status.ok()) {
      frozen_now.push_back(k);
      continue;
    }
    if (status.code() == Code::kUnsupported) {
      if (skipped) skipped->push_back({mount_points_[k], "file system does not support freezing"});
      continue;
    }
    // Undo in forward (mount) order: frozen_now holds indices in descending order.
    for (auto it = frozen_now.rbegin(); it != frozen_now.rend(); ++it) {
      (void)ThawFd(fds_[*it].get(), mount_points_[*it]);
    }
    return status;
  }
  std::sort(frozen_now.begin(), frozen_now.end());
  frozen_indices_ = std::move(frozen_now);
  return Status::Ok();
}

std::vector<ThawOutcome> FsFreezeSet::ThawAll() {
  std::vector<ThawOutcome> outcomes;
  for (auto i : frozen_indices_) outcomes.push_back(ThawFd(fds_[i].get(), mount_points_[i]));
  frozen_indices_.clear();
  return outcomes;
}

ThawOutcome ThawMountPoint(const std::string& mount_point) {
  int fd = ::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    ThawOutcome outcome;
    outcome.mount_point = mount_point;
    outcome.status = Error(Code::kIoError, mount_point + ": open: " + ErrnoText(errno));
    return outcome;
  }
  UniqueFd owned(fd);
  return ThawFd(owned.get(), mount_point);
}

}  // namespace qb::agent
