#include "host-daemon/daemon/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace qb::quiesced {

Result<InstanceLock> InstanceLock::Acquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Error(Code::kIoError, "lock file " + path + ": " + std::strerror(errno));
  int rc;
  do {
    rc = ::flock(fd.get(), LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno != EWOULDBLOCK)
      return Error(Code::kIoError, "lock " + path + ": " + std::strerror(errno));
    char owner[32] = {};
    ssize_t n = ::pread(fd.get(), owner, sizeof(owner) - 1, 0);
    std::string pid = n > 0 ? std::string(owner, static_cast<std::size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Error(Code::kBusy, "another quiesced" + (pid.empty() ? "" : " (pid " + pid + ")") +
                                  " holds " + path + "; refusing to start a second one");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock is what matters; the pid is only for the next daemon's message.
  }
  return InstanceLock(path, std::move(fd));
}

}  // namespace qb::quiesced
