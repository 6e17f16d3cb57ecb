// The thaw guard: a small child process that makes sure the guest thaws even when the agent
// cannot (killed with SIGKILL, stopped with SIGSTOP, wedged).
//
// Spawn() forks an idle guard ahead of time (at agent start and after each job, off the freeze
// path); Arm() hands it, before the first FIFREEZE, its own copies of the mount point
// descriptors (SCM_RIGHTS over a socket pair whose other end only the agent holds) and the lease
// deadline, and waits for its confirmation. Start() does both. An idle guard exits on "done" or
// end of file and touches nothing. Once armed it waits:
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
  // Most mount point descriptors one guard holds.
  static constexpr int kMaxFds = 1024;

  // Forks an idle guard and waits (at most limits::kGuardStartTimeout) for it to confirm it
  // runs. kIoError when socketpair/fork fails, kTimeout when the child never confirms (it is
  // then killed).
  static Result<ThawGuard> Spawn();

  // Hands an idle guard copies of `fds` and the lease deadline (steady clock) and waits (at
  // most limits::kGuardStartTimeout) for it to confirm. On failure the guard is killed (it
  // thaws nothing) and this object is empty. The caller keeps owning `fds`.
  Status Arm(const std::vector<int>& fds, std::chrono::steady_clock::time_point lease_deadline);

  // Spawn() + Arm().
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

  // Dismiss() without waiting: tells the guard "done" and closes the socket; the exit is reaped
  // later by Dismiss(), Reap() or the destructor.
  void SendDone();

  // Waits for the guard's exit (after SendDone) and returns its exit code, -1 if none.
  int Reap();

  // Closes the pipe without "done" (the guard thaws at once) and reaps the guard. Idempotent.
  // Returns true if the guard reported that it thawed.
  bool ReleaseAndThaw();

  // Waits, keeping the pipe open, until the guard exits on its own (lease expiry), then reaps
  // it. Returns true if the guard reported that it thawed. Blocks up to the lease.
  bool ReleaseAndThawAfterLease();

  pid_t pid() const { return pid_; }

 private:
  ThawGuard(pid_t pid, UniqueFd control) : pid_(pid), control_(std::move(control)) {}
  void Kill();  // SIGKILL and reap: a guard that failed to start or arm

  pid_t pid_ = -1;
  UniqueFd control_;
};

// Exit codes of the guard process.
inline constexpr int kGuardExitDismissed = 0;
inline constexpr int kGuardExitThawedAgentGone = 10;
inline constexpr int kGuardExitThawedLease = 11;

}  // namespace qb::agent
