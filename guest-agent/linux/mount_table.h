// The mount table as the kernel reports it in /proc/self/mountinfo (proc(5)).
//
// The order of entries is the order in which the mounts were made: a mount's parent always
// comes before it. The freezer relies on that order (freeze children first, thaw parents first).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace qb::agent {

struct MountEntry {
  int mount_id = 0;
  int parent_id = 0;
  unsigned dev_major = 0;
  unsigned dev_minor = 0;
  std::string root;          // path inside the file system that is mounted here
  std::string mount_point;   // absolute path, octal escapes (\040) decoded
  std::string fs_type;       // "ext4", "xfs", "tmpfs", ...
  std::string source;        // "/dev/sda1", "tmpfs", ...
  std::size_t position = 0;  // index in the table (mount order)
};

// Parses mountinfo text. Malformed lines fail with kInvalidArgument naming the line number;
// an empty text is an empty table.
Result<std::vector<MountEntry>> ParseMountInfo(std::string_view text);

// Reads and parses `path` (default: the calling process's mount table).
Result<std::vector<MountEntry>> ReadMountTable(const std::string& path = "/proc/self/mountinfo");

// The entry that is visible at `mount_point` (the last, i.e. topmost, mount there), or nullopt.
// `mount_point` is compared after removing trailing slashes ("/mnt/a/" == "/mnt/a").
std::optional<MountEntry> FindMount(const std::vector<MountEntry>& table,
                                    std::string_view mount_point);

// Removes trailing slashes except for the root itself.
std::string NormalizeMountPath(std::string_view path);

}  // namespace qb::agent
