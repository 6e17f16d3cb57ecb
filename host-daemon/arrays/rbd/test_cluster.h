// Test support: the single-node cluster a ctest fixture started (tests/ceph/ceph-cluster.sh),
// seen through librbd as client.admin, for setting up images and checking what the backend did.
// Test-only (never linked into quiesced).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "host-daemon/arrays/rbd/rados_handles.h"
#include "host-daemon/arrays/rbd/rbd_config.h"

namespace qb::arrays::rbd::testing {

// The cluster directory from QB_CEPH_DIR, or "" when the test runs without the fixture.
std::string ClusterDir();

// A backend config for the fixture's cluster as client.admin.
RbdConfig ClusterConfig();

class TestCluster {
 public:
  // Connects to the fixture's cluster, pool "rbd". Every image and group created through this
  // object is removed (snapshots, clones' protection and group membership included) on
  // destruction.
  static Result<std::unique_ptr<TestCluster>> Connect(const RbdConfig& config = ClusterConfig());
  ~TestCluster();

  IoCtx& pool() { return *pool_; }
  RadosCluster& cluster() { return pool_->cluster(); }

  // Creates image `name` (removing a leftover of that name first). Tracked for cleanup.
  Status CreateImage(const std::string& name, uint64_t size = 64ull << 20);
  // Creates group `name` and adds `images` to it. Tracked for cleanup.
  Status CreateGroup(const std::string& name, const std::vector<std::string>& images);
  // Tracks an image the code under test created (a clone) for cleanup.
  void Track(const std::string& image) { images_.push_back(image); }
  // Forgets every tracked image and group (for a cluster that is dead anyway).
  void Abandon() {
    images_.clear();
    groups_.clear();
  }

  Status Write(const std::string& image, uint64_t offset, const std::string& data);
  // Reads from the image head, or from its user snapshot `snap` when not empty.
  Result<std::string> Read(const std::string& image, uint64_t offset, size_t length,
                           const std::string& snap = "");
  // Reads from the image's share of group snapshot `group`@`group_snap`.
  Result<std::string> ReadGroupSnap(const std::string& image, const std::string& group,
                                    const std::string& group_snap, uint64_t offset, size_t length);
  // Names of the image's snapshots, every namespace.
  Result<std::vector<ImageSnap>> Snaps(const std::string& image);
  Result<std::vector<GroupSnap>> GroupSnaps(const std::string& group);
  // Creates (or fetches) cephx user client.<id> with the least privileges the backend documents
  // (mon 'profile rbd', osd 'profile rbd pool=rbd') and writes its keyring into the cluster
  // directory. Returns the keyring path.
  Result<std::string> CreateRbdUser(const std::string& id);
  // Removes the whole image: unprotects and purges snapshots, leaves its group. Missing: OK.
  Status RemoveImage(const std::string& image);
  // Removes a group (its snapshots too). Missing: OK.
  Status RemoveGroup(const std::string& group);

 private:
  explicit TestCluster(std::shared_ptr<IoCtx> pool) : pool_(std::move(pool)) {}
  std::shared_ptr<IoCtx> pool_;
  std::vector<std::string> images_;
  std::vector<std::string> groups_;
};

}  // namespace qb::arrays::rbd::testing
