// ArrayBackend for Ceph RBD images through librbd / librados (the C API Debian ships).
//
// LUNs: LunSpec::volume is "pool/image" or "pool/namespace/image".
// One LUN: a user snapshot of the image, rbd_snap_create2 with RBD_SNAP_CREATE_SKIP_QUIESCE
//   (the agent has frozen the guest already; librbd's own quiesce round trips to QEMU could eat
//   the whole VSS budget). array_name "pool/image@qb-<key>-<image>".
// Several LUNs: one RBD group snapshot (rbd_group_snap_create2, same flag) of the group
//   GroupFor(images) = "qb-<first image>", which Prepare() makes hold exactly those images; the
//   cut is atomic across the images. Every LUN's record carries the group's array name
//   "group:pool/qb-<first image>@qb-<key>-qb-<first image>".
//
// Deadline granularity: Snapshot() returns by its deadline (kTimeout) even while librbd is
// stuck; the librbd call goes on in the background until it ends or librados' op timeout fires
// (RbdConfig::op_timeout), and a snapshot it lands late is found by FindByKey(), which first
// waits for such a call of the same key to settle. Every other method blocks for at most a few
// op timeouts (each librados operation is bounded by RbdConfig).
//
// Thread-safety: all methods may be called from several worker threads at once.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host-daemon/arrays/backend.h"
#include "host-daemon/arrays/rbd/abandonable_calls.h"
#include "host-daemon/arrays/rbd/image_spec.h"
#include "host-daemon/arrays/rbd/rados_handles.h"
#include "host-daemon/arrays/rbd/rbd_config.h"

namespace qb::arrays::rbd {

// Cost figures, not limits: measured with rbd_latency_bench on the single-node test cluster
// (tests/ceph, memstore, 2 shared cores at load ~9): median of 20 Snapshot() calls 12-17 ms for
// one image, 22-23 ms for a group of 2 (maxima 40 / 55 ms). Prepare() projects the cut from
// these with head room; a real cluster's figures differ (network round trips, replication).
inline constexpr std::chrono::milliseconds kProjectedImageSnapshot{25};
inline constexpr std::chrono::milliseconds kProjectedGroupSnapshotBase{15};
inline constexpr std::chrono::milliseconds kProjectedGroupSnapshotPerImage{20};

class RbdBackend final : public ArrayBackend {
 public:
  // Does not connect: the first call that needs the cluster does (and a failed connect is tried
  // again by the next call).
  explicit RbdBackend(RbdConfig config);
  // Waits for snapshot calls still running in the background (bounded by the op timeout), then
  // closes images, pools and the cluster connection.
  ~RbdBackend() override;

  const std::string& name() const override { return config_.name; }
  Capabilities capabilities() const override;

  // OK when the image exists (opened read-only). kNotFound: no such pool or image.
  // kInvalidArgument: volume not pool/image. Connection failures as RadosCluster::Connect.
  Status Resolve(const LunSpec& lun) override;

  // Connects, opens the images (kept open for Snapshot), and for several LUNs makes the group
  // GroupFor(images) hold exactly them: creates it if missing, adds images that are in no group,
  // removes from it images that are not in `luns`. kConflict (nothing changed) when an image is
  // in another group (an image can be in one group only); kInvalidArgument for duplicate or
  // malformed volumes; kTimeout when the projected cut does not fit `budget`.
  // extent_counts: every LUN with 0 (librbd snapshots cost the same whatever the data).
  Result<PrepareReport> Prepare(const std::vector<LunSpec>& luns,
                                std::chrono::milliseconds budget) override;

  // See the file comment. Verifies before creating anything that the group holds exactly
  // `luns` (kConflict otherwise: call Prepare). On an array error removes what the call created
  // (kPartial if that fails too). kTimeout when the deadline passed first (nothing is attempted
  // when it has passed on entry).
  Result<std::vector<SnapshotRecord>> Snapshot(
      const std::vector<LunSpec>& luns, const std::string& job_key,
      std::chrono::steady_clock::time_point deadline) override;

  // Product snapshots of `luns` (image and group snapshots) made under `job_key`. Waits first
  // (up to kRbdSettleLimit) for a snapshot call of this key that outlived its deadline;
  // kBusy if it is still running then. A missing image has no snapshots (not an error).
  Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>& luns,
                                                const std::string& job_key) override;

  // Product snapshots of `lun`, its own and its share of group snapshots, oldest first.
  Result<std::vector<SnapshotRecord>> List(const LunSpec& lun) override;

  // Image snapshot: unprotects it if protected (kConflict while clones of it exist) and removes
  // it. Group snapshot: removes the whole group snapshot (all its images). Missing snapshot,
  // image or group: success.
  Status Remove(const SnapshotRecord& snapshot) override;

  // Exposes the snapshot as image `new_name` ("image" in the LUN's pool, or "pool/image").
  // Image snapshot: protects it and makes a copy-on-write clone (cheap). Group snapshot: librbd
  // 16 cannot clone from a group snapshot, so the image's data at the group snapshot is copied
  // into a new image (cost grows with the data). Returns "pool/image" of the new image.
  // kConflict if it exists.
  Result<std::string> Clone(const SnapshotRecord& snapshot, const std::string& new_name) override;

  // Image snapshot: rolls the image back. Group snapshot: rolls back the whole group, i.e. every
  // image of the VM the snapshot was taken of, to the same cut. kNotFound if the snapshot is gone.
  // The job layer refuses this while the VM runs; the backend does not check.
  Status Rollback(const SnapshotRecord& snapshot) override;

 private:
  struct Images {
    std::vector<ImageSpec> specs;                   // in the order of the LUNs
    std::vector<std::shared_ptr<RbdImage>> images;  // same order
  };

  Result<std::shared_ptr<RadosCluster>> Cluster();
  Result<std::shared_ptr<IoCtx>> Pool(const std::string& pool, const std::string& ns);
  // The cached read-write handle of `spec`, opened on first use.
  Result<std::shared_ptr<RbdImage>> Image(const ImageSpec& spec);
  // Drops a cached handle (after the image was found gone or replaced).
  void ForgetImage(const ImageSpec& spec);
  Result<std::vector<ImageSpec>> ParseLuns(const std::vector<LunSpec>& luns) const;
  Status EnsureGroup(const std::vector<ImageSpec>& specs, std::vector<std::string>* notes);
  Result<std::vector<SnapshotRecord>> ListImage(const ImageSpec& spec);
  // The bodies of Snapshot(), run on an abandonable call (they may outlive the caller's wait).
  Status CutImage(const ImageSpec& spec, const SnapshotRef& ref);
  Status CutGroup(const std::vector<ImageSpec>& specs, const SnapshotRef& ref);
  SnapshotRecord MakeRecord(const ImageSpec& lun, const SnapshotRef& ref,
                            std::chrono::system_clock::time_point created) const;

  const RbdConfig config_;
  std::mutex mu_;
  std::shared_ptr<RadosCluster> cluster_;                    // guarded by mu_
  std::map<std::string, std::shared_ptr<IoCtx>> pools_;      // "pool/ns"; guarded by mu_
  std::map<std::string, std::shared_ptr<RbdImage>> images_;  // ImageSpec string; mu_
  // Declared last: destroyed first, so background calls end while the caches are still alive.
  AbandonableCalls calls_;
};

}  // namespace qb::arrays::rbd
