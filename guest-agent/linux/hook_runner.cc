#include "guest-agent/linux/hook_runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/guest_text.h"
#include "common/unique_fd.h"

extern char** environ;

namespace qb::agent {
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(int err) { return std::strerror(err); }

// Builds the child's environment: ours, minus any QUIESCE_* we set, plus ours.
std::vector<std::string> HookEnvironment(const std::string& job_id, const std::string& phase,
                                         bool snapshot_ok, bool recovery) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("QUIESCE_JOB_ID=") || entry.starts_with("QUIESCE_SNAPSHOT_OK=") ||
        entry.starts_with("QUIESCE_RECOVERY=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.push_back("QUIESCE_JOB_ID=" + job_id);
  if (phase == "thaw")
    env.push_back(std::string("QUIESCE_SNAPSHOT_OK=") + (snapshot_ok ? "1" : "0"));
  if (phase == "thaw" && recovery) env.push_back("QUIESCE_RECOVERY=1");
  return env;
}

}  // namespace

Result<std::vector<std::string>> ListHooks(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return names;
    return Error(Code::kIoError, "hooks dir " + dir + ": " + ErrnoText(errno));
  }
  while (dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.' || name.back() == '~') continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::access(path.c_str(), X_OK) != 0) continue;
    names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

proto::WriterResult RunHook(const HookOptions& options, const std::string& name,
                            const std::string& phase, const std::string& job_id, bool snapshot_ok,
                            bool recovery) {
  proto::WriterResult result;
  result.name = ValidUtf8(name);  // a file name is any bytes; the wire carries UTF-8
  result.kind = proto::WriterKind::kHook;
  result.phase = phase;
  const auto started = Clock::now();
  auto finish = [&](bool ok, std::string state) {
    result.ok = ok;
    result.state = std::move(state);
    result.duration_ms = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
    return result;
  };

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return finish(false, "pipe: " + ErrnoText(errno));
  UniqueFd out_read(out[0]), out_write(out[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string path = options.dir + "/" + name;
  std::vector<std::string> env = HookEnvironment(job_id, phase, snapshot_ok, recovery);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string arg0 = path, arg1 = phase;
  char* argv[] = {arg0.data(), arg1.data(), nullptr};

  pid_t pid = -1;
  int spawn_error = posix_spawn(&pid, path.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  out_write.Reset();
  if (spawn_error != 0) return finish(false, "spawn: " + ErrnoText(spawn_error));

  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  const auto deadline = started + options.timeout;
  bool timed_out = false;
  bool output_open = true;
  bool truncated = false;
  char buffer[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[2] = {{output_open ? out_read.get() : -1, POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (output_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = read(out_read.get(), buffer, sizeof buffer);
      if (got <= 0) {
        output_open = false;
      } else {
        std::size_t room = options.max_output - std::min(options.max_output, result.output.size());
        result.output.append(buffer, std::min<std::size_t>(room, static_cast<std::size_t>(got)));
        if (static_cast<std::size_t>(got) > room) truncated = true;
      }
    }
    if (fds[1].revents & POLLIN) {
      // Exited: collect what is still buffered in the pipe without waiting for grandchildren.
      int flags = fcntl(out_read.get(), F_GETFL);
      fcntl(out_read.get(), F_SETFL, flags | O_NONBLOCK);
      while (output_open) {
        ssize_t got = read(out_read.get(), buffer, sizeof buffer);
        if (got <= 0) break;
        std::size_t room = options.max_output - std::min(options.max_output, result.output.size());
        result.output.append(buffer, std::min<std::size_t>(room, static_cast<std::size_t>(got)));
        if (static_cast<std::size_t>(got) > room) truncated = true;
      }
      break;
    }
    if (!pidfd && !output_open) break;  // no pidfd: wait in waitpid below
  }
  if (timed_out) ::kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // A hook may print anything, and the cut above can split a character: the agent sends valid
  // UTF-8 only (invalid bytes become U+FFFD).
  result.output = ValidUtf8(result.output);
  if (truncated) result.output += "\n[output truncated]";
  if (timed_out) {
    return finish(false, "timeout after " + std::to_string(options.timeout.count()) + " ms");
  }
  if (WIFEXITED(status)) {
    int code = WEXITSTATUS(status);
    return finish(code == 0, "exit " + std::to_string(code));
  }
  if (WIFSIGNALED(status)) return finish(false, "signal " + std::to_string(WTERMSIG(status)));
  return finish(false, "unknown wait status");
}

FreezeHooksRun RunFreezeHooks(const HookOptions& options, const std::string& job_id,
                              const HookProgress& progress) {
  FreezeHooksRun run;
  auto names = ListHooks(options.dir);
  if (!names.ok()) {
    proto::WriterResult failure;
    failure.name = options.dir;
    failure.phase = "freeze";
    failure.state = names.status().ToString();
    run.results.push_back(failure);
    run.ok = false;
    return run;
  }
  for (const auto& name : *names) {
    run.ran.push_back(name);
    if (progress) progress(name, false);
    run.results.push_back(RunHook(options, name, "freeze", job_id, false));
    if (progress) progress(name, true);
    if (!run.results.back().ok) {
      run.ok = false;
      break;
    }
  }
  return run;
}

std::vector<proto::WriterResult> RunThawHooks(const HookOptions& options,
                                              std::vector<std::string> names,
                                              const std::string& job_id, bool snapshot_ok,
                                              bool recovery) {
  std::sort(names.rbegin(), names.rend());
  std::vector<proto::WriterResult> results;
  for (const auto& name : names) {
    results.push_back(RunHook(options, name, "thaw", job_id, snapshot_ok, recovery));
  }
  return results;
}

}  // namespace qb::agent
