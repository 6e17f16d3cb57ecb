// Test file systems: loop-mounted ext4 / XFS images and tmpfs mounts inside a mktemp dir.
// Never touches a file system of the machine itself. Everything is torn down in destructors
// (thaw, unmount, remove), also when a test fails half-way.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace qb::agent::testing {

bool IsRoot();

// A directory from mkdtemp under /tmp, removed recursively on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A file system mounted at `<dir>/<name>`: "ext4" / "xfs" on a sparse loop image (xfs needs
// >= 300 MB), or "tmpfs". Empty mount_point() when creating it failed (see error()).
class TestMount {
 public:
  TestMount(const std::string& dir, const std::string& name, const std::string& fs_type);
  ~TestMount();
  TestMount(const TestMount&) = delete;
  TestMount& operator=(const TestMount&) = delete;

  bool ok() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& mount_point() const { return mount_point_; }

 private:
  std::string image_;
  std::string mount_point_;
  std::string error_;
  bool mounted_ = false;
};

// Writes and fsyncs a file on a thread, so a test can see whether writes block.
class BackgroundWriter {
 public:
  // Starts writing `path` (a file on `mount_point`) at once.
  BackgroundWriter(std::string mount_point, std::string path);
  // Thaws `mount_point` (so the thread can finish) and joins.
  ~BackgroundWriter();
  // True if the write + fsync completed within `timeout`.
  bool WaitDone(std::chrono::milliseconds timeout);
  bool done() const { return done_; }

 private:
  std::string mount_point_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Runs a shell command; returns its exit status (0 = success).
int Shell(const std::string& command);

}  // namespace qb::agent::testing
