// Inventory on the sysfs trees in guest-agent/testdata (see make_sysfs_trees.py: hand-built to
// real sysfs layout, for dm / md / EUI-64 cases the test VM does not have) and on the tree
// captured from the real test VM (tests/vm/captured-sysfs).
#include "guest-agent/linux/inventory.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace qb::agent {
namespace {

const std::string kData = QB_AGENT_TESTDATA;

const proto::Volume* FindVolume(const proto::Inventory& inv, const std::string& name) {
  for (const auto& v : inv.volumes) {
    if (v.name == name) return &v;
  }
  return nullptr;
}
const proto::Disk* FindDisk(const proto::Inventory& inv, const std::string& name) {
  for (const auto& d : inv.disks) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

TEST(InventoryTest, VirtioScsiWithNaaPartitionsDmAndMd) {
  auto inv =
      CollectInventory({kData + "/virtio-scsi.mountinfo", kData + "/sysfs-virtio-scsi", false});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  ASSERT_EQ(inv->volumes.size(), 3u);  // /, /srv/data (+ bind /export), /srv/raid
  const auto* root = FindVolume(*inv, "/");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->disk_names, std::vector<std::string>{"sda"});
  EXPECT_EQ(root->fs_type, "ext4");
  EXPECT_EQ(root->device, "/dev/sda1");
  const auto* data = FindVolume(*inv, "/srv/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->disk_names, std::vector<std::string>{"sda"});  // dm-0 -> sda2 -> sda
  EXPECT_EQ(data->mount_points, (std::vector<std::string>{"/srv/data", "/export"}));
  EXPECT_TRUE(data->freezable);
  const auto* raid = FindVolume(*inv, "/srv/raid");
  ASSERT_NE(raid, nullptr);
  EXPECT_EQ(raid->disk_names, (std::vector<std::string>{"sdb", "sdc"}));  // md0 -> sdb1, sdc1

  ASSERT_EQ(inv->disks.size(), 3u);
  const auto* sda = FindDisk(*inv, "sda");
  ASSERT_NE(sda, nullptr);
  EXPECT_EQ(sda->wwn, "5000c500a1b2c3d4");  // the LU's NAA, not the port's
  EXPECT_EQ(sda->serial, "LUN0001");
  EXPECT_EQ(sda->vendor, "QEMU");
  EXPECT_EQ(sda->model, "QEMU HARDDISK");
  EXPECT_EQ(sda->bus, "scsi");
  EXPECT_EQ(sda->size_bytes, 2097152ull * 512);
  const auto* sdb = FindDisk(*inv, "sdb");
  ASSERT_NE(sdb, nullptr);
  EXPECT_EQ(sdb->wwn, "0025388b71c0d0a1");  // EUI-64 when there is no NAA
  EXPECT_EQ(sdb->serial, "SER-B-0002");
  const auto* sdc = FindDisk(*inv, "sdc");
  ASSERT_NE(sdc, nullptr);
  EXPECT_EQ(sdc->wwn, "6001405abcdef0123456789abcdef012");  // from `wwid`, lower-cased
  EXPECT_EQ(sdc->serial, "");
}

TEST(InventoryTest, VirtioBlkWithSerial) {
  auto inv =
      CollectInventory({kData + "/virtio-blk.mountinfo", kData + "/sysfs-virtio-blk", false});
  ASSERT_TRUE(inv.ok());
  ASSERT_EQ(inv->volumes.size(), 1u);
  EXPECT_EQ(inv->volumes[0].disk_names, std::vector<std::string>{"vda"});
  ASSERT_EQ(inv->disks.size(), 1u);
  const auto& vda = inv->disks[0];
  EXPECT_EQ(vda.name, "vda");
  EXPECT_EQ(vda.serial, "VBLK-SERIAL-42");
  EXPECT_EQ(vda.wwn, "");
  EXPECT_EQ(vda.bus, "virtio");
  EXPECT_EQ(vda.size_bytes, 4194304ull * 512);
}

TEST(InventoryTest, UnknownDeviceHasNoDisks) {
  EXPECT_TRUE(WholeDisksOf(kData + "/sysfs-virtio-blk", 7, 3).empty());
}

// The files tests/vm/smoke-test.sh captured from the real test VM (see its README): plain
// copies of each disk's sysfs directory plus where the kernel's symlinks pointed (`*.realpath`).
// Rebuilt here into a tree with the same symlinks (/sys/block/X and /sys/dev/block/MAJ:MIN ->
// /sys/devices/..., X/device -> the SCSI / virtio device), then read like the real /sys.
class CapturedSysfs {
 public:
  CapturedSysfs() {
    char templ[] = "/tmp/qb-captured-sysfs-XXXXXX";
    root_ = ::mkdtemp(templ);
    namespace fs = std::filesystem;
    const fs::path captured = fs::path(QB_CAPTURED_SYSFS) / "sys" / "block";
    const fs::path sys = root_ / "sys";
    for (const auto& entry : fs::directory_iterator(captured)) {
      if (!entry.is_directory()) continue;
      const std::string name = entry.path().filename().string();
      const fs::path disk_dir = sys / Relative(ReadLine(captured / (name + ".realpath")));
      const fs::path device_dir = sys / Relative(ReadLine(entry.path() / "device.realpath"));
      fs::create_directories(disk_dir);
      fs::create_directories(device_dir);
      for (const auto& file : fs::directory_iterator(entry.path())) {
        const std::string leaf = file.path().filename().string();
        if (leaf == "device" || leaf == "device.realpath") continue;
        fs::copy(file.path(), disk_dir / leaf, fs::copy_options::recursive);
      }
      fs::copy(entry.path() / "device", device_dir, fs::copy_options::recursive);
      fs::create_symlink(device_dir, disk_dir / "device");
      fs::create_directories(sys / "block");
      fs::create_symlink(disk_dir, sys / "block" / name);
      fs::create_directories(sys / "dev" / "block");
      fs::create_symlink(disk_dir, sys / "dev" / "block" / ReadLine(entry.path() / "dev"));
    }
  }
  ~CapturedSysfs() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  std::string sysfs_root() const { return (root_ / "sys").string(); }
  static std::string mountinfo() { return std::string(QB_CAPTURED_SYSFS) + "/proc/self/mountinfo"; }

 private:
  static std::string ReadLine(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
  }
  // "/sys/devices/..." -> "devices/..."
  static std::string Relative(const std::string& real) {
    EXPECT_EQ(real.rfind("/sys/", 0), 0u) << real;
    return real.substr(5);
  }
  std::filesystem::path root_;
};

TEST(InventoryTest, CapturedFromTheTestVm) {
  CapturedSysfs tree;
  auto inv = CollectInventory({CapturedSysfs::mountinfo(), tree.sysfs_root(), false});
  ASSERT_TRUE(inv.ok()) << inv.status().ToString();
  ASSERT_EQ(inv->volumes.size(), 2u);  // the XFS data LUN and the ext4 virtio-blk disk
  const auto* data = FindVolume(*inv, "/mnt/data");
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->fs_type, "xfs");
  EXPECT_EQ(data->disk_names, std::vector<std::string>{"sda"});
  const auto* blk = FindVolume(*inv, "/mnt/blk");
  ASSERT_NE(blk, nullptr);
  EXPECT_EQ(blk->disk_names, std::vector<std::string>{"vda"});

  const auto* sda = FindDisk(*inv, "sda");
  ASSERT_NE(sda, nullptr);
  EXPECT_EQ(sda->wwn, "5000c500a0b1c2d3");  // QEMU scsi-hd wwn=0x5000c500a0b1c2d3, VPD 0x83
  EXPECT_EQ(sda->serial, "QBLUN0001");      // VPD 0x80
  EXPECT_EQ(sda->vendor, "QBRIDGE");
  EXPECT_EQ(sda->model, "TESTLUN");
  EXPECT_EQ(sda->bus, "scsi");
  EXPECT_EQ(sda->size_bytes, 512ull * 1024 * 1024);
  const auto* vda = FindDisk(*inv, "vda");
  ASSERT_NE(vda, nullptr);
  EXPECT_EQ(vda->wwn, "");  // virtio-blk has no VPD pages
  EXPECT_EQ(vda->serial, "QBBLK0001");
  EXPECT_EQ(vda->bus, "virtio");
}

TEST(Vpd83Test, NeverReadsPastTheBufferAndPrefersNaa) {
  std::vector<std::uint8_t> page = {0,    0x83, 0, 24, 0x01, 0x02, 0, 8, 1, 2, 3, 4,
                                    5,    6,    7, 8,                                  // EUI-64
                                    0x01, 0x03, 0, 8,  0x60, 1,    2, 3, 4, 5, 6, 7};  // NAA
  EXPECT_EQ(WwnFromVpd83(page), "6001020304050607");
  // The NAA designator claims more bytes than there are.
  auto cut = page;
  cut[19] = 200;
  EXPECT_EQ(WwnFromVpd83(cut), "0102030405060708");
  // Page length beyond the buffer.
  auto lying = page;
  lying[3] = 250;
  EXPECT_EQ(WwnFromVpd83(lying), "6001020304050607");
  EXPECT_EQ(WwnFromVpd83(std::vector<std::uint8_t>{0, 0x80, 0, 0}), "");
  EXPECT_EQ(WwnFromVpd83(std::vector<std::uint8_t>{0, 0x83}), "");
  EXPECT_EQ(SerialFromVpd80(std::vector<std::uint8_t>{0, 0x80, 0, 40, 'x'}), "");
}

}  // namespace
}  // namespace qb::agent
