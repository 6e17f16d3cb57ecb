#include "guest-agent/linux/thaw_guard.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/time_limits.h"

namespace qb::agent {
namespace {

constexpr char kDoneByte = 'D';
constexpr char kReadyByte = 'R';

// --- Child side: async-signal-safe calls only. -------------------------------------------------

std::int64_t MonotonicNowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void CloseAllExcept(const int* keep, int keep_count) {
  // keep[] is sorted ascending. close_range is a plain system call (no allocation).
  unsigned from = 0;
  for (int i = 0; i <= keep_count; ++i) {
    unsigned to = i < keep_count ? static_cast<unsigned>(keep[i]) : ~0U;
    if (to > from) {
      if (syscall(SYS_close_range, from, to - 1, 0) != 0 && i == keep_count) {
        for (unsigned fd = from; fd < 4096; ++fd) close(static_cast<int>(fd));
      }
    }
    if (i < keep_count) from = static_cast<unsigned>(keep[i]) + 1;
  }
}

[[noreturn]] void GuardMain(const int* fds, int fd_count, int control_fd, int ready_fd,
                            std::int64_t deadline_ms) {
  // The guard outlives a service stop's SIGTERM on purpose: it ends only by "done", EOF or
  // the lease. SIGKILL still works for an administrator.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGTERM, &ignore, nullptr);
  sigaction(SIGINT, &ignore, nullptr);
  sigaction(SIGHUP, &ignore, nullptr);
  sigaction(SIGPIPE, &ignore, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);

  char ready = kReadyByte;
  if (write(ready_fd, &ready, 1) != 1) _exit(1);
  close(ready_fd);

  int exit_code = kGuardExitThawedLease;
  for (;;) {
    std::int64_t left = deadline_ms - MonotonicNowMs();
    if (left <= 0) break;
    pollfd p{control_fd, POLLIN, 0};
    int timeout = left > 60000 ? 60000 : static_cast<int>(left);
    int n = poll(&p, 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      exit_code = kGuardExitThawedAgentGone;
      break;
    }
    if (n == 0) continue;  // re-check the deadline
    char byte = 0;
    ssize_t got = read(control_fd, &byte, 1);
    if (got < 0 && errno == EINTR) continue;
    if (got == 1 && byte == kDoneByte) _exit(kGuardExitDismissed);
    if (got == 1) continue;                 // unknown byte: ignore
    exit_code = kGuardExitThawedAgentGone;  // EOF or error: the agent is gone
    break;
  }
  for (int i = 0; i < fd_count; ++i) ioctl(fds[i], FITHAW, 0);
  _exit(exit_code);
}

}  // namespace

Result<ThawGuard> ThawGuard::Start(const std::vector<int>& fds,
                                   std::chrono::steady_clock::time_point lease_deadline) {
  // A socket pair, not a pipe: send(MSG_NOSIGNAL) of "done" to a guard that already exited
  // must fail with EPIPE, not raise SIGPIPE in the agent.
  int control[2];
  int ready[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, control) != 0) {
    return Error(Code::kIoError, std::string("guard pipe: ") + std::strerror(errno));
  }
  UniqueFd control_read(control[0]), control_write(control[1]);
  if (pipe2(ready, O_CLOEXEC) != 0) {
    return Error(Code::kIoError, std::string("guard pipe: ") + std::strerror(errno));
  }
  UniqueFd ready_read(ready[0]), ready_write(ready[1]);

  // Everything the child needs is prepared before fork: it must not allocate.
  std::vector<int> keep(fds);
  keep.push_back(control_read.get());
  keep.push_back(ready_write.get());
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  auto deadline_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(lease_deadline.time_since_epoch())
          .count();

  pid_t pid = fork();
  if (pid < 0) return Error(Code::kIoError, std::string("guard fork: ") + std::strerror(errno));
  if (pid == 0) {
    CloseAllExcept(keep.data(), static_cast<int>(keep.size()));
    GuardMain(fds.data(), static_cast<int>(fds.size()), control[0], ready[1], deadline_ms);
  }
  ready_write.Reset();
  control_read.Reset();
  ThawGuard guard(pid, std::move(control_write));

  pollfd p{ready_read.get(), POLLIN, 0};
  int waited = -1;
  do {
    waited = poll(&p, 1, static_cast<int>(limits::kGuardStartTimeout.count()));
  } while (waited < 0 && errno == EINTR);
  char byte = 0;
  if (waited != 1 || read(ready_read.get(), &byte, 1) != 1 || byte != kReadyByte) {
    ::kill(pid, SIGKILL);
    guard.control_.Reset();
    guard.Reap();
    return Error(Code::kTimeout, "thaw guard did not start");
  }
  return guard;
}

ThawGuard::ThawGuard(ThawGuard&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), control_(std::move(other.control_)) {}

ThawGuard& ThawGuard::operator=(ThawGuard&& other) noexcept {
  if (this != &other) {
    ReleaseAndThaw();
    pid_ = std::exchange(other.pid_, -1);
    control_ = std::move(other.control_);
  }
  return *this;
}

ThawGuard::~ThawGuard() { ReleaseAndThaw(); }

int ThawGuard::Reap() {
  if (pid_ < 0) return -1;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  pid_ = -1;
  if (r < 0 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

void ThawGuard::Dismiss() {
  if (pid_ < 0) return;
  if (control_) {
    char done = kDoneByte;
    ssize_t n;
    do {
      n = send(control_.get(), &done, 1, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    control_.Reset();
  }
  Reap();
}

bool ThawGuard::ReleaseAndThaw() {
  if (pid_ < 0) return false;
  control_.Reset();
  int code = Reap();
  return code == kGuardExitThawedAgentGone || code == kGuardExitThawedLease;
}

}  // namespace qb::agent

namespace qb::agent {

bool ThawGuard::ReleaseAndThawAfterLease() {
  if (pid_ < 0) return false;
  int code = Reap();
  control_.Reset();
  return code == kGuardExitThawedLease;
}

}  // namespace qb::agent
