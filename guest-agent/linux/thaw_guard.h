// The thaw guard: a small child process that makes sure the guest thaws even when the agent
// cannot (killed with SIGKILL, stopped with SIGSTOP, wedged).
//
// Start() forks before the first FIFREEZE. The child keeps its own copies of the mount point
// descriptors and one end of a socket pair whose other end only the agent holds. It then waits:
//  - a "done" byte on the socket: the agent thawed normally; the child exits touching nothing;
//  - end of file without "done": the agent died; the child thaws every descriptor at once;
//  - the lease deadline passes: the child thaws every descriptor (agent stopped or wedged).
//
// Why fork without exec: the child needs nothing but poll, read, ioctl, clock_gettime, close
// and _exit, all async-signal-safe, so it is safe after fork() in a threaded process, it needs
// no path to the agent binary (which may have been replaced by an upgrade), and the inherited
// descriptors are already the right ones. It allocates nothing and takes no locks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace qb::agent {

class ThawGuard {
 public:
  // Forks the guard holding copies of `fds` and waits (at most limits::kGuardStartTimeout) for
  // it to confirm it runs. `lease_deadline` is on the steady (CLOCK_MONOTONIC) clock. Fails
  // with kIoError when pipe/fork fails and kTimeout when the child never confirms (the child is
  // then killed). The caller keeps owning `fds`.
  static Result<ThawGuard> Start(const std::vector<int>& fds,
                                 std::chrono::steady_clock::time_point lease_deadline);

  ThawGuard(ThawGuard&& other) noexcept;
  ThawGuard& operator=(ThawGuard&& other) noexcept;
  ThawGuard(const ThawGuard&) = delete;
  ThawGuard& operator=(const ThawGuard&) = delete;

  // Without Dismiss(): closes the pipe, so the guard thaws at once, and reaps it.
  ~ThawGuard();

  // The agent thawed itself: tells the guard to exit without touching anything and reaps it.
  // Blocks until the guard has exited (it exits at once). Idempotent.
  void Dismiss();

  // Closes the pipe without "done" (the guard thaws at once) and reaps the guard. Idempotent.
  // Returns true if the guard reported that it thawed.
  bool ReleaseAndThaw();

  // Waits, keeping the pipe open, until the guard exits on its own (lease expiry), then reaps
  // it. Returns true if the guard reported that it thawed. Blocks up to the lease.
  bool ReleaseAndThawAfterLease();

  pid_t pid() const { return pid_; }

 private:
  ThawGuard(pid_t pid, UniqueFd control) : pid_(pid), control_(std::move(control)) {}
  int Reap();

  pid_t pid_ = -1;
  UniqueFd control_;
};

// Exit codes of the guard process.
inline constexpr int kGuardExitDismissed = 0;
inline constexpr int kGuardExitThawedAgentGone = 10;
inline constexpr int kGuardExitThawedLease = 11;

}  // namespace qb::agent
