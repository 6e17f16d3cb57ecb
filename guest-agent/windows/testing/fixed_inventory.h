// A fixed inventory for tests: a system volume C: and a data volume D: on a pass-through LUN.
#pragma once

#include "guest-agent/windows/volume_inventory.h"

namespace qb::agent::win {

class FixedInventory final : public VolumeInventory {
 public:
  static constexpr const char* kSystemVolume =
      "\\\\?\\Volume{0000000c-0000-0000-0000-000000000000}\\";
  static constexpr const char* kDataVolume =
      "\\\\?\\Volume{0000000d-0000-0000-0000-000000000000}\\";

  Result<proto::Inventory> Collect() override {
    proto::Inventory inv;
    inv.volumes.push_back({kSystemVolume,
                           "\\Device\\HarddiskVolume2",
                           "NTFS",
                           true,
                           {"PhysicalDrive0"},
                           40ull << 30,
                           {"C:\\"}});
    inv.volumes.push_back({kDataVolume,
                           "\\Device\\HarddiskVolume4",
                           "NTFS",
                           true,
                           {"PhysicalDrive1"},
                           100ull << 30,
                           {"D:\\"}});
    inv.disks.push_back(
        {"PhysicalDrive0", "", "QM00001", "QEMU", "QEMU HARDDISK", "sata", 40ull << 30});
    inv.disks.push_back({"PhysicalDrive1", "600a098038303053", "LUN01", "PURE", "FlashArray",
                         "scsi", 100ull << 30});
    return inv;
  }
};

}  // namespace qb::agent::win
