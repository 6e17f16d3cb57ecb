#include "guest-agent/linux/testing/loop_fs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "guest-agent/linux/fs_freezer.h"

namespace qb::agent::testing {

bool IsRoot() { return ::geteuid() == 0; }

int Shell(const std::string& command) {
  int status = std::system(command.c_str());
  return status == -1 ? -1 : WEXITSTATUS(status);
}

TempDir::TempDir() {
  char templ[] = "/tmp/qb-agent-test.XXXXXX";
  char* made = ::mkdtemp(templ);
  if (made) path_ = made;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TestMount::TestMount(const std::string& dir, const std::string& name, const std::string& fs_type) {
  mount_point_ = dir + "/" + name;
  ::mkdir(mount_point_.c_str(), 0755);
  std::string command;
  if (fs_type == "tmpfs") {
    command = "mount -t tmpfs -o size=8m tmpfs '" + mount_point_ + "'";
  } else {
    image_ = dir + "/" + name + ".img";
    std::string size = fs_type == "xfs" ? "320M" : "64M";
    std::string mkfs = fs_type == "xfs" ? "mkfs.xfs -q -f" : "mkfs.ext4 -q -F";
    command = "truncate -s " + size + " '" + image_ + "' && " + mkfs + " '" + image_ +
              "' >/dev/null 2>&1 && mount -o loop '" + image_ + "' '" + mount_point_ + "'";
  }
  if (Shell(command) != 0) {
    error_ = "failed: " + command;
    return;
  }
  mounted_ = true;
}

TestMount::~TestMount() {
  if (mounted_) {
    (void)ThawMountPoint(mount_point_);  // a failed test may have left it frozen
    if (::umount2(mount_point_.c_str(), 0) != 0) ::umount2(mount_point_.c_str(), MNT_DETACH);
  }
  ::rmdir(mount_point_.c_str());
  if (!image_.empty()) ::unlink(image_.c_str());
}

BackgroundWriter::BackgroundWriter(std::string mount_point, std::string path)
    : mount_point_(std::move(mount_point)) {
  thread_ = std::thread([this, path = std::move(path)] {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const char data[] = "written while frozen?\n";
      ssize_t n = ::write(fd, data, sizeof data - 1);
      (void)n;
      ::fsync(fd);
      ::close(fd);
    }
    done_ = true;
  });
}

BackgroundWriter::~BackgroundWriter() {
  if (!done_) (void)ThawMountPoint(mount_point_);
  thread_.join();
}

bool BackgroundWriter::WaitDone(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done_;
}

}  // namespace qb::agent::testing
