// How the rbd backend names things: LUN volumes ("pool/image"), the group a multi-image VM's
// images live in, and the array names of its snapshots. Pure string logic, no librbd.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace qb::arrays::rbd {

// An RBD image: LunSpec::volume "pool/image" or "pool/namespace/image" (the form libvirt's
// <source protocol='rbd' name='...'> uses).
struct ImageSpec {
  std::string pool;
  std::string ns;  // RADOS namespace; empty for the default one
  std::string name;

  // "pool/image" or "pool/ns/image".
  std::string ToString() const;
  friend bool operator==(const ImageSpec&, const ImageSpec&) = default;
  friend auto operator<=>(const ImageSpec&, const ImageSpec&) = default;
};

// Parses a volume. kInvalidArgument when a part is empty, there are not 2 or 3 parts, or a part
// holds '@', a control character or is longer than 255 bytes.
Result<ImageSpec> ParseImageSpec(std::string_view volume);

// The RBD group (an RBD object in the pool and namespace of `name`) that holds a multi-image
// VM's images so one group snapshot cuts them all at once.
struct GroupSpec {
  std::string pool;
  std::string ns;
  std::string name;
  friend bool operator==(const GroupSpec&, const GroupSpec&) = default;
};

// The group for `images` (at least two, no duplicates): "qb-<name of the first image>" in the
// first image's pool and namespace, images ordered by (pool, ns, name). The backend is only
// handed LUNs, not the VM's name, so the name is derived from the LUN set; it stays the same when
// images are added to a VM whose first image is kept. Deterministic across restarts.
GroupSpec GroupFor(std::vector<ImageSpec> images);

// Where a product snapshot lives; SnapshotRecord::array_name is its string form:
//   image snapshot: "pool/image@snap"            (or "pool/ns/image@snap")
//   group snapshot: "group:pool/group@snap"      (or "group:pool/ns/group@snap")
// A group snapshot's records (one per LUN) all carry the group's array name.
struct SnapshotRef {
  enum class Kind { kImage, kGroup };
  Kind kind = Kind::kImage;
  std::string pool;
  std::string ns;
  std::string object;  // image or group name
  std::string snap;

  std::string ToString() const;
  friend bool operator==(const SnapshotRef&, const SnapshotRef&) = default;
};

// kInvalidArgument when `array_name` is not of one of the forms above.
Result<SnapshotRef> ParseSnapshotRef(std::string_view array_name);

}  // namespace qb::arrays::rbd
