#include "host-daemon/arrays/rbd/test_cluster.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>

namespace qb::arrays::rbd::testing {

std::string ClusterDir() {
  const char* dir = std::getenv("QB_CEPH_DIR");
  return dir ? dir : "";
}

RbdConfig ClusterConfig() {
  RbdConfig config;
  config.conf_path = ClusterDir() + "/ceph.conf";
  config.keyring_path = ClusterDir() + "/keyring";
  config.client_id = "admin";
  return config;
}

Result<std::unique_ptr<TestCluster>> TestCluster::Connect(const RbdConfig& config) {
  if (ClusterDir().empty()) {
    return Error(Code::kNotFound,
                 "QB_CEPH_DIR is not set (run through ctest: its fixture "
                 "starts the cluster)");
  }
  Result<std::shared_ptr<RadosCluster>> cluster = RadosCluster::Connect(config);
  if (!cluster.ok()) return cluster.status();
  Result<std::shared_ptr<IoCtx>> pool = IoCtx::Open(*cluster, "rbd", "");
  if (!pool.ok()) return pool.status();
  return std::unique_ptr<TestCluster>(new TestCluster(*pool));
}

TestCluster::~TestCluster() {
  for (auto it = images_.rbegin(); it != images_.rend(); ++it) (void)RemoveImage(*it);
  for (const std::string& group : groups_) (void)RemoveGroup(group);
}

Status TestCluster::CreateImage(const std::string& name, uint64_t size) {
  QB_RETURN_IF_ERROR(RemoveImage(name));
  int order = 0;
  const int rc = rbd_create(pool_->get(), name.c_str(), size, &order);
  if (rc < 0) return RbdError(rc, "creating test image " + name);
  images_.push_back(name);
  return Status::Ok();
}

Status TestCluster::CreateGroup(const std::string& name, const std::vector<std::string>& images) {
  QB_RETURN_IF_ERROR(RemoveGroup(name));
  int rc = rbd_group_create(pool_->get(), name.c_str());
  if (rc < 0) return RbdError(rc, "creating test group " + name);
  groups_.push_back(name);
  for (const std::string& image : images) {
    rc = rbd_group_image_add(pool_->get(), name.c_str(), pool_->get(), image.c_str());
    if (rc < 0) return RbdError(rc, "adding " + image + " to " + name);
  }
  return Status::Ok();
}

Status TestCluster::Write(const std::string& image, uint64_t offset, const std::string& data) {
  Result<std::shared_ptr<RbdImage>> handle =
      RbdImage::Open(pool_, image, RbdImage::Mode::kReadWrite);
  if (!handle.ok()) return handle.status();
  const ssize_t n = rbd_write((*handle)->get(), offset, data.size(), data.data());
  if (n < 0) return RbdError(static_cast<int>(n), "writing " + image);
  if (static_cast<size_t>(n) != data.size()) return Error(Code::kIoError, "short write");
  const int rc = rbd_flush((*handle)->get());
  if (rc < 0) return RbdError(rc, "flushing " + image);
  return Status::Ok();
}

namespace {

Result<std::string> ReadFrom(rbd_image_t image, uint64_t offset, size_t length) {
  std::string data(length, '\0');
  const ssize_t n = rbd_read(image, offset, length, data.data());
  if (n < 0) return RbdError(static_cast<int>(n), "reading");
  data.resize(static_cast<size_t>(n));
  return data;
}

}  // namespace

Result<std::string> TestCluster::Read(const std::string& image, uint64_t offset, size_t length,
                                      const std::string& snap) {
  rbd_image_t raw = nullptr;
  const int rc =
      rbd_open_read_only(pool_->get(), image.c_str(), &raw, snap.empty() ? nullptr : snap.c_str());
  if (rc < 0) return RbdError(rc, "opening " + image + "@" + snap);
  Result<std::string> data = ReadFrom(raw, offset, length);
  rbd_close(raw);
  return data;
}

Result<std::string> TestCluster::ReadGroupSnap(const std::string& image, const std::string& group,
                                               const std::string& group_snap, uint64_t offset,
                                               size_t length) {
  Result<std::shared_ptr<RbdImage>> handle =
      RbdImage::Open(pool_, image, RbdImage::Mode::kReadOnly);
  if (!handle.ok()) return handle.status();
  Result<std::vector<ImageSnap>> snaps = ListImageSnaps(**handle);
  if (!snaps.ok()) return snaps.status();
  for (const ImageSnap& snap : *snaps) {
    if (snap.ns_type != RBD_SNAP_NAMESPACE_TYPE_GROUP || snap.group_name != group ||
        snap.group_snap_name != group_snap) {
      continue;
    }
    const int rc = rbd_snap_set_by_id((*handle)->get(), snap.id);
    if (rc < 0) return RbdError(rc, "selecting group snapshot");
    return ReadFrom((*handle)->get(), offset, length);
  }
  return Error(Code::kNotFound, image + " has no part in " + group + "@" + group_snap);
}

Result<std::vector<ImageSnap>> TestCluster::Snaps(const std::string& image) {
  Result<std::shared_ptr<RbdImage>> handle =
      RbdImage::Open(pool_, image, RbdImage::Mode::kReadOnly);
  if (!handle.ok()) return handle.status();
  return ListImageSnaps(**handle);
}

Result<std::vector<GroupSnap>> TestCluster::GroupSnaps(const std::string& group) {
  return ListGroupSnaps(*pool_, group);
}

Result<std::string> TestCluster::CreateRbdUser(const std::string& id) {
  const std::string command =
      R"({"prefix": "auth get-or-create", "entity": "client.)" + id +
      R"(", "caps": ["mon", "profile rbd", "osd", "profile rbd pool=rbd"], "format": "plain"})";
  const char* commands[] = {command.c_str()};
  char* out = nullptr;
  size_t out_length = 0;
  char* status = nullptr;
  size_t status_length = 0;
  const int rc = rados_mon_command(cluster().get(), commands, 1, "", 0, &out, &out_length, &status,
                                   &status_length);
  const std::string keyring(out ? out : "", out ? out_length : 0);
  const std::string why(status ? status : "", status ? status_length : 0);
  rados_buffer_free(out);
  rados_buffer_free(status);
  if (rc < 0) return RbdError(rc, "auth get-or-create client." + id + ": " + why);
  const std::string path = ClusterDir() + "/client." + id + ".keyring";
  std::ofstream file(path, std::ios::trunc);
  file << keyring;
  if (!file.good()) return Error(Code::kIoError, "cannot write " + path);
  return path;
}

Status TestCluster::RemoveImage(const std::string& image) {
  {
    Result<std::shared_ptr<RbdImage>> handle =
        RbdImage::Open(pool_, image, RbdImage::Mode::kReadWrite);
    if (!handle.ok()) {
      return handle.status().code() == Code::kNotFound ? Status::Ok() : handle.status();
    }
    // Group snapshots keep the image from being removed: drop its group (the tests' groups
    // hold only test images) with every snapshot, first.
    Result<std::optional<GroupRef>> group = GroupOfImage(**handle);
    if (group.ok() && *group) {
      Result<std::string> pool_name = cluster().PoolName((*group)->pool);
      if (pool_name.ok() && *pool_name == pool_->pool()) {
        (void)RemoveGroup((*group)->name);
      }
    }
    Result<std::vector<ImageSnap>> snaps = ListImageSnaps(**handle);
    if (snaps.ok()) {
      for (const ImageSnap& snap : *snaps) {
        if (snap.ns_type != RBD_SNAP_NAMESPACE_TYPE_USER) continue;
        (void)rbd_snap_unprotect((*handle)->get(), snap.name.c_str());
        (void)rbd_snap_remove((*handle)->get(), snap.name.c_str());
      }
    }
  }
  const int rc = rbd_remove(pool_->get(), image.c_str());
  if (rc < 0 && rc != -ENOENT) return RbdError(rc, "removing test image " + image);
  return Status::Ok();
}

Status TestCluster::RemoveGroup(const std::string& group) {
  Result<std::vector<GroupSnap>> snaps = ListGroupSnaps(*pool_, group);
  if (snaps.ok()) {
    for (const GroupSnap& snap : *snaps) {
      (void)rbd_group_snap_remove(pool_->get(), group.c_str(), snap.name.c_str());
    }
  }
  Result<std::vector<GroupImage>> members = ListGroupImages(*pool_, group);
  if (members.ok()) {
    for (const GroupImage& member : *members) {
      (void)rbd_group_image_remove(pool_->get(), group.c_str(), pool_->get(), member.name.c_str());
    }
  }
  const int rc = rbd_group_remove(pool_->get(), group.c_str());
  if (rc < 0 && rc != -ENOENT) return RbdError(rc, "removing test group " + group);
  return Status::Ok();
}

}  // namespace qb::arrays::rbd::testing
