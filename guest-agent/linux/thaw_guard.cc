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
constexpr char kArmedByte = 'K';
constexpr char kArmTag = 'A';
constexpr int kArmChunk = 200;  // descriptors per message (SCM_MAX_FD is 253)

// One arming message; kArmChunk descriptors at most ride along as SCM_RIGHTS.
struct ArmHeader {
  char tag;
  char last;
  std::int32_t count;
  std::int64_t deadline_ms;
};

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

[[noreturn]] void ThawAndExit(const int* fds, int fd_count, int exit_code) {
  for (int i = 0; i < fd_count; ++i) ioctl(fds[i], FITHAW, 0);
  _exit(exit_code);
}

[[noreturn]] void GuardMain(int control_fd) {
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
  if (send(control_fd, &ready, 1, MSG_NOSIGNAL) != 1) _exit(1);

  // Idle: wait to be armed with the descriptors to thaw and the lease deadline. EOF or "done"
  // before any descriptor arrived: the agent went away or retired us; nothing to thaw.
  int fds[ThawGuard::kMaxFds];
  int fd_count = 0;
  std::int64_t deadline_ms = 0;
  for (;;) {
    ArmHeader header{};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kArmChunk)];
    iovec iov{&header, sizeof(header)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t got = recvmsg(control_fd, &msg, 0);
    if (got < 0 && errno == EINTR) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); got > 0 && c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int n = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      const unsigned char* data = CMSG_DATA(c);
      for (int i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
        if (fd_count < ThawGuard::kMaxFds) fds[fd_count++] = fd;
      }
    }
    if (got <= 0) ThawAndExit(fds, fd_count, fd_count ? kGuardExitThawedAgentGone : 0);
    if (got == 1 && header.tag == kDoneByte) ThawAndExit(fds, 0, kGuardExitDismissed);
    if (got != static_cast<ssize_t>(sizeof(header)) || header.tag != kArmTag ||
        (msg.msg_flags & MSG_CTRUNC)) {
      // A broken arming: say nothing, so the agent times out and kills us. Thaw nothing.
      continue;
    }
    deadline_ms = header.deadline_ms;
    if (header.last) break;
  }
  char armed = kArmedByte;
  if (send(control_fd, &armed, 1, MSG_NOSIGNAL) != 1) {
    ThawAndExit(fds, fd_count, kGuardExitThawedAgentGone);
  }

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
  ThawAndExit(fds, fd_count, exit_code);
}

// Waits up to limits::kGuardStartTimeout for `expected` from the guard.
bool AwaitByte(int fd, char expected) {
  pollfd p{fd, POLLIN, 0};
  int waited = -1;
  do {
    waited = poll(&p, 1, static_cast<int>(limits::kGuardStartTimeout.count()));
  } while (waited < 0 && errno == EINTR);
  char byte = 0;
  ssize_t got = -1;
  if (waited == 1) {
    do {
      got = read(fd, &byte, 1);
    } while (got < 0 && errno == EINTR);
  }
  return got == 1 && byte == expected;
}

}  // namespace

Result<ThawGuard> ThawGuard::Spawn() {
  // A socket pair, not a pipe: send(MSG_NOSIGNAL) of "done" to a guard that already exited
  // must fail with EPIPE, not raise SIGPIPE in the agent; SEQPACKET keeps each arming message
  // (header + descriptors) whole.
  int control[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, control) != 0) {
    return Error(Code::kIoError, std::string("guard socket: ") + std::strerror(errno));
  }
  UniqueFd child_end(control[0]), agent_end(control[1]);
  int keep[1] = {control[0]};

  pid_t pid = fork();
  if (pid < 0) return Error(Code::kIoError, std::string("guard fork: ") + std::strerror(errno));
  if (pid == 0) {
    CloseAllExcept(keep, 1);
    GuardMain(control[0]);
  }
  child_end.Reset();
  ThawGuard guard(pid, std::move(agent_end));
  if (!AwaitByte(guard.control_.get(), kReadyByte)) {
    guard.Kill();
    return Error(Code::kTimeout, "thaw guard did not start");
  }
  return guard;
}

Status ThawGuard::Arm(const std::vector<int>& fds,
                      std::chrono::steady_clock::time_point lease_deadline) {
  if (pid_ < 0 || !control_) return Error(Code::kInternal, "thaw guard is not running");
  if (fds.size() > static_cast<std::size_t>(kMaxFds)) {
    return Error(Code::kInvalidArgument,
                 "thaw guard: more than " + std::to_string(kMaxFds) + " file systems");
  }
  const auto deadline_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(lease_deadline.time_since_epoch())
          .count();
  std::size_t sent = 0;
  do {
    const std::size_t n = std::min<std::size_t>(kArmChunk, fds.size() - sent);
    ArmHeader header{};
    header.tag = kArmTag;
    header.last = sent + n == fds.size() ? 1 : 0;
    header.count = static_cast<std::int32_t>(n);
    header.deadline_ms = deadline_ms;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kArmChunk)] = {};
    iovec iov{&header, sizeof(header)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (n > 0) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n);
      std::memcpy(CMSG_DATA(c), fds.data() + sent, sizeof(int) * n);
    }
    ssize_t r;
    do {
      r = sendmsg(control_.get(), &msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r != static_cast<ssize_t>(sizeof(header))) {
      const int err = errno;
      Kill();
      return Error(Code::kIoError, std::string("arming the thaw guard: ") + std::strerror(err));
    }
    sent += n;
  } while (sent < fds.size());
  if (!AwaitByte(control_.get(), kArmedByte)) {
    Kill();
    return Error(Code::kTimeout, "thaw guard did not confirm it is armed");
  }
  return Status::Ok();
}

Result<ThawGuard> ThawGuard::Start(const std::vector<int>& fds,
                                   std::chrono::steady_clock::time_point lease_deadline) {
  auto guard = Spawn();
  if (!guard.ok()) return guard.status();
  Status armed = guard->Arm(fds, lease_deadline);
  if (!armed.ok()) return armed;
  return guard;
}

void ThawGuard::Kill() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  control_.Reset();
  Reap();
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
  SendDone();
  Reap();
}

void ThawGuard::SendDone() {
  if (pid_ < 0) return;
  if (control_) {
    char done = kDoneByte;
    ssize_t n;
    do {
      n = send(control_.get(), &done, 1, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    control_.Reset();
  }
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
