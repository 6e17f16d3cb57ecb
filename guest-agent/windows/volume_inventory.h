// Which volumes the guest has and which disks they lie on (the host cross-checks coverage with
// it and the agent resolves Freeze.volumes against it). The Windows implementation walks the
// volume GUID paths, their disk extents and each disk's storage device-id descriptor
// (inventory_win.cc); tests use a fixed inventory.
#pragma once

#include <memory>

#include "common/status.h"
#include "protocol/messages.h"

namespace qb::agent::win {

class VolumeInventory {
 public:
  virtual ~VolumeInventory() = default;
  // Blocking: call on a worker thread. kIoError when the system cannot be queried.
  virtual Result<proto::Inventory> Collect() = 0;
};

// The real one (Windows API). Defined in inventory_win.cc.
std::unique_ptr<VolumeInventory> MakeWindowsInventory();

// The guest's OS description for HelloReply (RtlGetVersion, computer name).
proto::OsInfo WindowsOsInfo();

}  // namespace qb::agent::win
