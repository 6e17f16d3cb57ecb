// Test support: a loop-mounted scratch file system in a mktemp directory, torn down always.
// Needs root and mkfs.<type>; tests GTEST_SKIP when unavailable.
#pragma once

#include <stdlib.h>
#include <sys/mount.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace qb::arrays::reflink::testing {

class ScratchMount {
 public:
  // type: "xfs" (mkfs.xfs -m reflink=1 on a sparse image of `image_mb`), "btrfs", or "tmpfs".
  ScratchMount(const std::string& type, int image_mb = 320) {
    std::string pattern = (std::filesystem::temp_directory_path() / "qb-reflink-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return;
    dir_ = pattern;
    mount_point_ = dir_ + "/mnt";
    std::filesystem::create_directory(mount_point_);
    if (type == "tmpfs") {
      mounted_ = ::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=64m") == 0;
      return;
    }
    const std::string image = dir_ + "/fs.img";
    const std::string format = type == "btrfs" ? "mkfs.btrfs -q '" : "mkfs.xfs -q -m reflink=1 '";
    const std::string mkfs = "truncate -s " + std::to_string(image_mb) + "M '" + image + "' && " +
                             format + image + "' >/dev/null 2>&1";
    if (std::system(mkfs.c_str()) != 0) return;
    const std::string mount = "mount -o loop '" + image + "' '" + mount_point_ + "' 2>/dev/null";
    mounted_ = std::system(mount.c_str()) == 0;
  }
  ~ScratchMount() {
    if (mounted_) ::umount2(mount_point_.c_str(), 0);  // loop device autocleared by mount -o loop
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  ScratchMount(const ScratchMount&) = delete;
  ScratchMount& operator=(const ScratchMount&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& path() const { return mount_point_; }

 private:
  std::string dir_;
  std::string mount_point_;
  bool mounted_ = false;
};

}  // namespace qb::arrays::reflink::testing
