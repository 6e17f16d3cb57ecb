// Disk inventory from sysfs: mount point -> block device -> (partitions, device mapper, md)
// -> whole disks -> each disk's identity (WWN/NAA from VPD page 0x83, serial, vendor, model,
// bus, size). The host uses it only to cross-check that every frozen volume lies entirely on
// LUNs it snapshots.
//
// Every path is rooted at an injectable sysfs root so tests run on captured trees. Reading
// sysfs blocks only briefly, but run it on the worker thread anyway.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "guest-agent/linux/mount_table.h"
#include "protocol/messages.h"

namespace qb::agent {

struct InventorySources {
  std::string mountinfo_path = "/proc/self/mountinfo";
  std::string sysfs_root = "/sys";
  // Fill Volume.sizeBytes with statvfs() of each mount point (off for captured trees, whose
  // mount points are not this machine's).
  bool measure_file_systems = true;
};

// Volumes: every mount backed by a block device (major != 0), one entry per file system
// (bind mounts listed in mount_points), with the whole disks it lies on. Disks: each whole disk
// any volume lies on. A device whose sysfs entry is missing yields a volume with no disks.
Result<proto::Inventory> CollectInventory(const InventorySources& sources);

// Same, from an already parsed mount table.
proto::Inventory BuildInventory(const std::vector<MountEntry>& mounts,
                                const std::string& sysfs_root, bool measure_file_systems);

// The whole disks (kernel names) under the block device `major:minor`, following partitions to
// their parent and dm/md devices through their `slaves`. Sorted, no duplicates.
std::vector<std::string> WholeDisksOf(const std::string& sysfs_root, unsigned major,
                                      unsigned minor);

// Identity of one whole disk /sys/block/<name>.
proto::Disk DescribeDisk(const std::string& sysfs_root, const std::string& name);

// The best identifier in a binary VPD page 0x83 (SPC-4 7.8.6): a logical-unit NAA designator
// (lower-case hex, no prefix), else an EUI-64, else "". Never reads past `page`.
std::string WwnFromVpd83(std::span<const std::uint8_t> page);

// The unit serial number from a binary VPD page 0x80, trimmed; "" if malformed.
std::string SerialFromVpd80(std::span<const std::uint8_t> page);

}  // namespace qb::agent
