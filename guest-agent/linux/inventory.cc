#include "guest-agent/linux/inventory.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/unique_fd.h"

namespace qb::agent {
namespace {

namespace fs = std::filesystem;

// VPD pages are at most 64 KiB + header; sysfs attributes are small.
constexpr std::size_t kMaxAttributeBytes = 64 * 1024 + 4;

std::string ReadAttribute(const fs::path& path) {
  // Plain read(2) into a small buffer: most attributes are a few bytes, and zero-filling a
  // 64 KiB string per attribute made an Inventory cost milliseconds in a slow guest.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  UniqueFd owned(fd);
  std::string data;
  char buffer[4096];
  while (data.size() < kMaxAttributeBytes) {
    ssize_t n = ::read(fd, buffer, std::min(sizeof(buffer), kMaxAttributeBytes - data.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  return data;
}

std::string Trim(std::string text) {
  auto not_space = [](unsigned char c) { return !std::isspace(c) && c != '\0'; };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  return text;
}

std::string Hex(std::span<const std::uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out;
}

// The directory of a block device in /sys/devices, from /sys/dev/block/MAJ:MIN.
std::optional<fs::path> DeviceDir(const std::string& sysfs_root, unsigned major, unsigned minor) {
  fs::path link = fs::path(sysfs_root) / "dev" / "block" /
                  (std::to_string(major) + ":" + std::to_string(minor));
  std::error_code ec;
  fs::path resolved = fs::canonical(link, ec);
  if (ec) return std::nullopt;
  return resolved;
}

void CollectWholeDisks(const fs::path& dev_dir, std::set<std::string>* disks, int depth) {
  if (depth > 16) return;  // a cycle in a malformed tree
  std::error_code ec;
  // A partition: its parent directory is the whole disk.
  if (fs::exists(dev_dir / "partition", ec)) {
    disks->insert(dev_dir.parent_path().filename().string());
    return;
  }
  // dm / md (and anything stacked): follow every slave.
  fs::path slaves = dev_dir / "slaves";
  bool has_slaves = false;
  if (fs::is_directory(slaves, ec)) {
    for (const auto& entry : fs::directory_iterator(slaves, ec)) {
      fs::path target = fs::canonical(entry.path(), ec);
      if (ec) continue;
      has_slaves = true;
      CollectWholeDisks(target, disks, depth + 1);
    }
  }
  if (!has_slaves) disks->insert(dev_dir.filename().string());
}

std::string BusOf(const std::string& sysfs_root, const std::string& name) {
  std::error_code ec;
  fs::path block = fs::canonical(fs::path(sysfs_root) / "block" / name, ec);
  if (ec) return "unknown";
  std::string path = block.string();
  if (path.find("/usb") != std::string::npos) return "usb";
  if (path.find("/ata") != std::string::npos) return "ata";
  if (name.rfind("nvme", 0) == 0 || path.find("/nvme") != std::string::npos) return "nvme";
  fs::path subsystem = fs::canonical(block / "device" / "subsystem", ec);
  if (!ec) {
    std::string bus = subsystem.filename().string();
    if (bus == "scsi" || bus == "virtio") return bus;
  }
  if (name.rfind("vd", 0) == 0) return "virtio";
  if (name.rfind("sd", 0) == 0) return "scsi";
  return "unknown";
}

}  // namespace

std::string WwnFromVpd83(std::span<const std::uint8_t> page) {
  if (page.size() < 4 || page[1] != 0x83) return {};
  std::size_t length = (static_cast<std::size_t>(page[2]) << 8) | page[3];
  std::size_t end = std::min(page.size(), 4 + length);
  std::string naa, eui;
  for (std::size_t at = 4; at + 4 <= end;) {
    std::uint8_t code_set = page[at] & 0x0f;
    std::uint8_t association = (page[at + 1] >> 4) & 0x03;
    std::uint8_t type = page[at + 1] & 0x0f;
    std::size_t len = page[at + 3];
    if (at + 4 + len > end) break;
    auto designator = page.subspan(at + 4, len);
    if (association == 0 && code_set == 1) {  // about the logical unit, binary
      if (type == 3 && naa.empty() && (len == 8 || len == 16)) naa = Hex(designator);
      if (type == 2 && eui.empty() && (len == 8 || len == 12 || len == 16)) eui = Hex(designator);
    }
    at += 4 + len;
  }
  return !naa.empty() ? naa : eui;
}

std::string SerialFromVpd80(std::span<const std::uint8_t> page) {
  if (page.size() < 4 || page[1] != 0x80) return {};
  std::size_t length = (static_cast<std::size_t>(page[2]) << 8) | page[3];
  if (4 + length > page.size()) return {};
  std::string serial(reinterpret_cast<const char*>(page.data() + 4), length);
  return Trim(serial);
}

std::vector<std::string> WholeDisksOf(const std::string& sysfs_root, unsigned major,
                                      unsigned minor) {
  std::set<std::string> disks;
  if (auto dir = DeviceDir(sysfs_root, major, minor)) CollectWholeDisks(*dir, &disks, 0);
  return {disks.begin(), disks.end()};
}

proto::Disk DescribeDisk(const std::string& sysfs_root, const std::string& name) {
  proto::Disk disk;
  disk.name = name;
  fs::path block = fs::path(sysfs_root) / "block" / name;
  fs::path device = block / "device";
  auto bytes = [](const std::string& s) {
    return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  std::string pg83 = ReadAttribute(device / "vpd_pg83");
  disk.wwn = WwnFromVpd83(bytes(pg83));
  if (disk.wwn.empty()) {
    // "naa.5000c500a1b2c3d4", "eui.0025388b71c0d0a1", "t10.ATA ..." : keep NAA / EUI only.
    std::string wwid = Trim(ReadAttribute(block / "wwid"));
    if (wwid.empty()) wwid = Trim(ReadAttribute(device / "wwid"));
    if (wwid.rfind("naa.", 0) == 0 || wwid.rfind("eui.", 0) == 0) {
      disk.wwn = wwid.substr(4);
      std::transform(disk.wwn.begin(), disk.wwn.end(), disk.wwn.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    }
  }
  disk.serial = SerialFromVpd80(bytes(ReadAttribute(device / "vpd_pg80")));
  if (disk.serial.empty()) disk.serial = Trim(ReadAttribute(block / "serial"));   // virtio-blk
  if (disk.serial.empty()) disk.serial = Trim(ReadAttribute(device / "serial"));  // nvme
  disk.vendor = Trim(ReadAttribute(device / "vendor"));
  disk.model = Trim(ReadAttribute(device / "model"));
  disk.bus = BusOf(sysfs_root, name);
  std::string sectors = Trim(ReadAttribute(block / "size"));
  if (!sectors.empty()) {
    try {
      disk.size_bytes = std::stoull(sectors) * 512;  // always 512-byte units in sysfs
    } catch (const std::exception&) {
      disk.size_bytes = 0;
    }
  }
  return disk;
}

proto::Inventory BuildInventory(const std::vector<MountEntry>& mounts,
                                const std::string& sysfs_root, bool measure_file_systems) {
  proto::Inventory inventory;
  std::map<std::pair<unsigned, unsigned>, std::size_t> by_device;
  std::set<std::string> disk_names;
  for (const auto& mount : mounts) {
    if (mount.dev_major == 0) continue;  // tmpfs, proc, overlay, ...: no block device
    auto key = std::make_pair(mount.dev_major, mount.dev_minor);
    auto it = by_device.find(key);
    if (it != by_device.end()) {
      inventory.volumes[it->second].mount_points.push_back(mount.mount_point);
      continue;
    }
    proto::Volume volume;
    volume.name = mount.mount_point;
    volume.device = mount.source;
    volume.fs_type = mount.fs_type;
    volume.freezable =
        mount.fs_type != "vfat" && mount.fs_type != "iso9660" && mount.fs_type != "squashfs";
    volume.disk_names = WholeDisksOf(sysfs_root, mount.dev_major, mount.dev_minor);
    volume.mount_points.push_back(mount.mount_point);
    struct statvfs st {};
    if (measure_file_systems && statvfs(mount.mount_point.c_str(), &st) == 0) {
      volume.size_bytes = static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize;
    }
    disk_names.insert(volume.disk_names.begin(), volume.disk_names.end());
    by_device[key] = inventory.volumes.size();
    inventory.volumes.push_back(std::move(volume));
  }
  for (const auto& name : disk_names) inventory.disks.push_back(DescribeDisk(sysfs_root, name));
  return inventory;
}

Result<proto::Inventory> CollectInventory(const InventorySources& sources) {
  auto mounts = ReadMountTable(sources.mountinfo_path);
  if (!mounts.ok()) return mounts.status();
  return BuildInventory(*mounts, sources.sysfs_root, sources.measure_file_systems);
}

}  // namespace qb::agent
