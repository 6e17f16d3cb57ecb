#include "host-daemon/arrays/exec/script_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <vector>

#include "common/unique_fd.h"

namespace qb::arrays::exec {
namespace {

Status IoError(const std::string& what) {
  return Error(Code::kIoError, what + ": " + std::strerror(errno));
}

int MillisUntil(std::chrono::steady_clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > INT_MAX ? INT_MAX : static_cast<int>(left.count());
}

// Appends what is readable on `fd` to `out` up to `cap` bytes (the rest is drained and
// dropped). Returns false at EOF or error.
bool Drain(int fd, std::string& out, std::size_t cap, bool* truncated) {
  char buffer[16384];
  const ssize_t n = ::read(fd, buffer, sizeof buffer);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  const std::size_t room = cap > out.size() ? cap - out.size() : 0;
  const std::size_t keep = static_cast<std::size_t>(n) < room ? static_cast<std::size_t>(n) : room;
  out.append(buffer, keep);
  if (keep < static_cast<std::size_t>(n) && truncated != nullptr) *truncated = true;
  return true;
}

std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    if (end > start) out.push_back(path.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

std::string Octal(mode_t mode) {
  char text[16];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

bool TrustedOwner(const struct stat& st) { return st.st_uid == 0 || st.st_uid == ::geteuid(); }

// A directory anyone may add names to, but where only an entry's owner may rename or remove it
// (the sticky bit, as on /tmp), owned by root or the daemon's user: an entry in it owned by root
// or the daemon's user cannot be swapped by anyone else, so the path stays trusted as long as
// that entry's owner is checked too (done for every entry, symlinks included).
bool StickyOpenDirectory(const struct stat& st) {
  return S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) != 0 && TrustedOwner(st) &&
         (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

// Owner root or the daemon's user, no write bit for group or others (a sticky directory aside).
Status CheckOwnerAndMode(const std::string& path, const struct stat& st) {
  if (!TrustedOwner(st)) {
    return Error(Code::kPermissionDenied, path + " is owned by uid " + std::to_string(st.st_uid) +
                                              ", not root (or the daemon's user)");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !StickyOpenDirectory(st)) {
    return Error(Code::kPermissionDenied,
                 path + " is writable by group or others (mode " + Octal(st.st_mode) + ")");
  }
  return Status::Ok();
}

}  // namespace

std::vector<std::string> ScriptEnvironment() {
  return {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"};
}

Status CheckTrustedProgram(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    return Error(Code::kInvalidArgument, path + " is not an absolute path");
  }
  struct stat st {};
  if (::stat("/", &st) != 0) return IoError("stat /");
  QB_RETURN_IF_ERROR(CheckOwnerAndMode("/", st));
  // Resolve like the kernel: every directory a name is looked up in is checked before it is
  // trusted, including those of each symlink's target.
  std::deque<std::string> todo;
  for (auto& c : Components(path)) todo.push_back(std::move(c));
  std::string current;  // "" is "/"
  int links = 0;
  while (!todo.empty()) {
    const std::string name = todo.front();
    todo.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      current = current.substr(0, current.rfind('/'));
      continue;
    }
    const std::string next = current + "/" + name;
    if (::lstat(next.c_str(), &st) != 0) {
      if (errno == ENOENT) return Error(Code::kNotFound, next + " does not exist");
      return IoError("lstat " + next);
    }
    if (S_ISLNK(st.st_mode)) {
      // Whoever owns a link can repoint it: in a sticky open directory only links of trusted
      // owners are followed (elsewhere the directory's own check keeps others out).
      if (!TrustedOwner(st)) {
        return Error(Code::kPermissionDenied, next + " is a symlink owned by uid " +
                                                  std::to_string(st.st_uid) +
                                                  ", not root (or the daemon's user)");
      }
      if (++links > 40) return Error(Code::kInvalidArgument, path + ": too many symlinks");
      std::vector<char> target(PATH_MAX + 1);
      const ssize_t n = ::readlink(next.c_str(), target.data(), PATH_MAX);
      if (n < 0) return IoError("readlink " + next);
      const std::string to(target.data(), static_cast<std::size_t>(n));
      auto parts = Components(to);
      todo.insert(todo.begin(), parts.begin(), parts.end());
      if (!to.empty() && to.front() == '/') current.clear();
      continue;
    }
    QB_RETURN_IF_ERROR(CheckOwnerAndMode(next, st));
    if (todo.empty()) {
      if (!S_ISREG(st.st_mode)) return Error(Code::kPermissionDenied, next + " is not a file");
    } else {
      if (!S_ISDIR(st.st_mode)) return Error(Code::kNotFound, next + " is not a directory");
      current = next;
    }
  }
  return Status::Ok();
}

Result<ScriptOutput> RunScript(const std::string& program,
                               const std::vector<std::string>& environment,
                               const std::string& input,
                               std::chrono::steady_clock::time_point deadline,
                               std::size_t max_stdout, std::size_t max_stderr) {
  // stdin is a socket so writing to a script that does not read it gives EPIPE, not SIGPIPE.
  int stdin_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0) {
    return IoError("socketpair");
  }
  UniqueFd stdin_parent(stdin_pair[0]), stdin_child(stdin_pair[1]);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return IoError("pipe");
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return IoError("pipe");
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  // Everything the child touches is prepared before fork (only async-signal-safe calls after).
  std::vector<char> path(program.begin(), program.end());
  path.push_back('\0');
  char* const argv[] = {path.data(), nullptr};
  std::vector<std::vector<char>> env_text;
  std::vector<char*> envp;
  for (const auto& entry : environment) env_text.emplace_back(entry.begin(), entry.end());
  for (auto& entry : env_text) {
    entry.push_back('\0');
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) return IoError("fork " + program);
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (::dup2(stdin_child.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 ||
        ::dup2(err_write.get(), 2) < 0) {
      ::_exit(127);
    }
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execve(path.data(), argv, envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also in the parent: no window where a kill misses the group
  stdin_child.Reset();
  out_write.Reset();
  err_write.Reset();

  ScriptOutput output;
  std::size_t written = 0;
  bool out_open = true, err_open = true, timed_out = false;
  if (input.empty()) stdin_parent.Reset();
  while (out_open || err_open) {
    pollfd fds[3];
    nfds_t count = 0;
    const int out_index = out_open ? static_cast<int>(count++) : -1;
    if (out_open) fds[out_index] = {out_read.get(), POLLIN, 0};
    const int err_index = err_open ? static_cast<int>(count++) : -1;
    if (err_open) fds[err_index] = {err_read.get(), POLLIN, 0};
    const int in_index = stdin_parent ? static_cast<int>(count++) : -1;
    if (stdin_parent) fds[in_index] = {stdin_parent.get(), POLLOUT, 0};
    const int wait_ms = MillisUntil(deadline);
    if (wait_ms == 0) {
      timed_out = true;
      break;
    }
    const int ready = ::poll(fds, count, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      timed_out = true;  // treat as fatal: kill below
      break;
    }
    if (in_index >= 0 && fds[in_index].revents != 0) {
      const ssize_t n = ::send(stdin_parent.get(), input.data() + written, input.size() - written,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) written += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        stdin_parent.Reset();  // EOF for the script
      }
    }
    if (out_index >= 0 && fds[out_index].revents != 0) {
      out_open = Drain(out_read.get(), output.stdout_text, max_stdout, &output.stdout_truncated);
    }
    if (err_index >= 0 && fds[err_index].revents != 0) {
      err_open = Drain(err_read.get(), output.stderr_text, max_stderr, nullptr);
    }
  }

  int status = 0;
  if (!timed_out) {
    // Output closed; the process should exit promptly. Wait for it within the deadline:
    // a pidfd becomes readable when the process exits.
    UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    for (;;) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) break;
      if (done < 0 && errno != EINTR) break;
      const int wait_ms = MillisUntil(deadline);
      if (wait_ms == 0 || !exited) {
        timed_out = wait_ms == 0;
        if (!exited && wait_ms != 0) {
          while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
        }
        break;
      }
      pollfd fd{exited.get(), POLLIN, 0};
      ::poll(&fd, 1, wait_ms);
    }
  }
  // Whatever happened, nothing of the script's process group outlives the call.
  ::kill(-pid, SIGKILL);
  if (timed_out) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string message = "script " + program + " did not finish before its deadline; killed";
    if (!output.stderr_text.empty()) message += "; stderr: " + output.stderr_text;
    return Error(Code::kTimeout, std::move(message));
  }
  if (WIFEXITED(status)) {
    output.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    output.exit_code = -WTERMSIG(status);
  }
  return output;
}

}  // namespace qb::arrays::exec
