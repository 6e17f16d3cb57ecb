// The guests the daemon serves: from the static config and libvirt discovery. Each
// has the LUNs the HOST snapshots (never taken from the guest) and its agent link.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "host-daemon/arrays/backend.h"
#include "host-daemon/link/guest_link.h"

namespace qb::jobs {

struct GuestSpec {
  std::string name;
  std::string endpoint;               // "unix:/path" or "vsock:CID:PORT"
  std::vector<arrays::LunSpec> luns;  // what the host snapshots, from config / libvirt
  // Guest disk name (Inventory.disks[].name) -> LunSpec::volume, for LUNs without a WWN the
  // guest could report (file-backed LUNs, loop devices); from a [[guests]] LUN's `disk` key.
  // Checked after WWN matching.
  std::map<std::string, std::string> disk_map;
  std::string source = "config";  // "config" or the libvirt URI
};

struct Guest {
  GuestSpec spec;
  std::shared_ptr<link::GuestLink> link;
};

// Owned by main(); used only from the io thread.
class GuestRegistry {
 public:
  // kConflict if a guest of that name exists; kInvalidArgument if the link is missing.
  Status Add(Guest guest);
  // nullptr if unknown. The pointer is valid until Remove(name).
  Guest* Find(const std::string& name);
  // Stops the guest's link and forgets it. Unknown names are ignored.
  void Remove(const std::string& name);
  // Forgets the guest WITHOUT stopping its link and hands it over (the caller stops the link,
  // e.g. once a job in flight has thawed through it). nullopt for an unknown name.
  std::optional<Guest> Detach(const std::string& name);
  std::vector<Guest*> All();
  // Stops every link (daemon shutdown).
  void StopAll();

 private:
  std::map<std::string, Guest> guests_;
};

}  // namespace qb::jobs
