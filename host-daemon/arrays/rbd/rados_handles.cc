#include "host-daemon/arrays/rbd/rados_handles.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace qb::arrays::rbd {
namespace {

// librados takes durations as whole seconds; round up so a limit is never shortened to 0.
std::string WholeSeconds(std::chrono::milliseconds limit) {
  const auto ms = std::max<int64_t>(limit.count(), 1);
  return std::to_string((ms + 999) / 1000);
}

std::chrono::system_clock::time_point ToTimePoint(const timespec& ts) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace

Status RbdError(int rc, std::string_view what) {
  const int err = rc < 0 ? -rc : rc;
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  message += " (" + std::to_string(err) + ")";
  switch (err) {
    case ENOENT:
      return Error(Code::kNotFound, std::move(message));
    case ETIMEDOUT:
      return Error(Code::kTimeout, std::move(message));
    case EEXIST:
      return Error(Code::kConflict, std::move(message));
    case EPERM:
    case EACCES:
      return Error(Code::kPermissionDenied, std::move(message));
    case EBUSY:
      return Error(Code::kBusy, std::move(message));
    default:
      return Error(Code::kArrayError, std::move(message));
  }
}

// --- RadosCluster ------------------------------------------------------------------------------

Result<std::shared_ptr<RadosCluster>> RadosCluster::Connect(const RbdConfig& config) {
  rados_t raw = nullptr;
  const std::string user = "client." + config.client_id;
  int rc = rados_create2(&raw, config.cluster.c_str(), user.c_str(), 0);
  if (rc < 0) return RbdError(rc, "rados_create for client." + config.client_id);
  // Owned from here on, so every failure below shuts the half-built client down.
  std::shared_ptr<RadosCluster> cluster(new RadosCluster(raw));

  rc = rados_conf_read_file(raw, config.conf_path.empty() ? nullptr : config.conf_path.c_str());
  if (rc < 0) {
    return RbdError(
        rc, "reading ceph config '" +
                (config.conf_path.empty() ? std::string("<default>") : config.conf_path) + "'");
  }
  if (!config.keyring_path.empty()) {
    rc = rados_conf_set(raw, "keyring", config.keyring_path.c_str());
    if (rc < 0) return RbdError(rc, "setting keyring path");
  }
  const std::string op_timeout = WholeSeconds(config.op_timeout);
  const std::string mount_timeout = WholeSeconds(config.connect_timeout);
  for (const auto& [option, value] :
       {std::pair<const char*, const std::string*>{"rados_osd_op_timeout", &op_timeout},
        {"rados_mon_op_timeout", &op_timeout},
        {"client_mount_timeout", &mount_timeout}}) {
    rc = rados_conf_set(raw, option, value->c_str());
    if (rc < 0) return RbdError(rc, std::string("setting ") + option);
  }
  rc = rados_connect(raw);
  if (rc < 0) {
    return RbdError(rc, "connecting to the Ceph cluster as client." + config.client_id);
  }
  return cluster;
}

RadosCluster::~RadosCluster() { rados_shutdown(cluster_); }

Result<int64_t> RadosCluster::PoolId(const std::string& pool) const {
  const int64_t id = rados_pool_lookup(cluster_, pool.c_str());
  if (id < 0) return RbdError(static_cast<int>(id), "pool '" + pool + "'");
  return id;
}

Result<std::string> RadosCluster::PoolName(int64_t pool_id) const {
  std::string name(256, '\0');
  for (;;) {
    const int rc = rados_pool_reverse_lookup(cluster_, pool_id, name.data(), name.size());
    if (rc == -ERANGE && name.size() < 65536) {
      name.resize(name.size() * 4);
      continue;
    }
    if (rc < 0) return RbdError(rc, "pool id " + std::to_string(pool_id));
    name.resize(std::strlen(name.c_str()));
    return name;
  }
}

// --- IoCtx -------------------------------------------------------------------------------------

Result<std::shared_ptr<IoCtx>> IoCtx::Open(std::shared_ptr<RadosCluster> cluster,
                                           const std::string& pool, const std::string& ns) {
  rados_ioctx_t raw = nullptr;
  const int rc = rados_ioctx_create(cluster->get(), pool.c_str(), &raw);
  if (rc < 0) return RbdError(rc, "opening pool '" + pool + "'");
  rados_ioctx_set_namespace(raw, ns.empty() ? nullptr : ns.c_str());
  return std::shared_ptr<IoCtx>(new IoCtx(std::move(cluster), raw, pool, ns));
}

IoCtx::~IoCtx() { rados_ioctx_destroy(ioctx_); }

// --- RbdImage ----------------------------------------------------------------------------------

Result<std::shared_ptr<RbdImage>> RbdImage::Open(std::shared_ptr<IoCtx> ioctx,
                                                 const std::string& name, Mode mode) {
  rbd_image_t raw = nullptr;
  const int rc = mode == Mode::kReadOnly
                     ? rbd_open_read_only(ioctx->get(), name.c_str(), &raw, nullptr)
                     : rbd_open(ioctx->get(), name.c_str(), &raw, nullptr);
  if (rc < 0) return RbdError(rc, "opening image '" + ioctx->pool() + "/" + name + "'");
  return std::shared_ptr<RbdImage>(new RbdImage(std::move(ioctx), raw, name));
}

RbdImage::~RbdImage() { rbd_close(image_); }

// --- lists -------------------------------------------------------------------------------------

Result<std::vector<ImageSnap>> ListImageSnaps(const RbdImage& image) {
  std::vector<rbd_snap_info_t> raw(16);
  int count = 0;
  for (;;) {
    int max = static_cast<int>(raw.size());
    count = rbd_snap_list(image.get(), raw.data(), &max);
    if (count == -ERANGE) {
      raw.resize(static_cast<size_t>(max) + 1);
      continue;
    }
    if (count < 0) return RbdError(count, "listing snapshots of '" + image.name() + "'");
    break;
  }
  std::vector<ImageSnap> snaps;
  snaps.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    ImageSnap snap;
    snap.id = raw[i].id;
    snap.name = raw[i].name ? raw[i].name : "";
    snaps.push_back(std::move(snap));
  }
  rbd_snap_list_end(raw.data());

  for (ImageSnap& snap : snaps) {
    int rc = rbd_snap_get_namespace_type(image.get(), snap.id, &snap.ns_type);
    if (rc < 0)
      return RbdError(rc, "snapshot namespace of '" + image.name() + "@" + snap.name + "'");
    timespec ts{};
    if (rbd_snap_get_timestamp(image.get(), snap.id, &ts) == 0) snap.created = ToTimePoint(ts);
    if (snap.ns_type == RBD_SNAP_NAMESPACE_TYPE_GROUP) {
      rbd_snap_group_namespace_t group{};
      rc = rbd_snap_get_group_namespace(image.get(), snap.id, &group, sizeof group);
      if (rc < 0) return RbdError(rc, "group of snapshot '" + image.name() + "@" + snap.name + "'");
      snap.group_pool = group.group_pool;
      snap.group_name = group.group_name ? group.group_name : "";
      snap.group_snap_name = group.group_snap_name ? group.group_snap_name : "";
      rbd_snap_group_namespace_cleanup(&group, sizeof group);
    }
  }
  std::sort(snaps.begin(), snaps.end(),
            [](const ImageSnap& a, const ImageSnap& b) { return a.id < b.id; });
  return snaps;
}

Result<std::optional<GroupRef>> GroupOfImage(const RbdImage& image) {
  rbd_group_info_t info{};
  const int rc = rbd_get_group(image.get(), &info, sizeof info);
  if (rc < 0) return RbdError(rc, "group of image '" + image.name() + "'");
  std::optional<GroupRef> group;
  if (info.name != nullptr && info.name[0] != '\0' && info.pool >= 0) {
    group = GroupRef{info.pool, info.name};
  }
  rbd_group_info_cleanup(&info, sizeof info);
  return group;
}

Result<std::vector<GroupImage>> ListGroupImages(const IoCtx& ioctx, const std::string& group) {
  std::vector<rbd_group_image_info_t> raw(8);
  size_t count = raw.size();
  for (;;) {
    count = raw.size();
    const int rc =
        rbd_group_image_list(ioctx.get(), group.c_str(), raw.data(), sizeof raw[0], &count);
    if (rc == -ERANGE) {
      raw.resize(count + 1);
      continue;
    }
    if (rc < 0) return RbdError(rc, "listing images of group '" + group + "'");
    break;
  }
  std::vector<GroupImage> images;
  for (size_t i = 0; i < count; ++i) {
    images.push_back(GroupImage{raw[i].pool, raw[i].name ? raw[i].name : "",
                                raw[i].state == RBD_GROUP_IMAGE_STATE_ATTACHED});
  }
  rbd_group_image_list_cleanup(raw.data(), sizeof raw[0], count);
  return images;
}

Result<std::vector<GroupSnap>> ListGroupSnaps(const IoCtx& ioctx, const std::string& group) {
  std::vector<rbd_group_snap_info_t> raw(8);
  size_t count = raw.size();
  for (;;) {
    count = raw.size();
    const int rc =
        rbd_group_snap_list(ioctx.get(), group.c_str(), raw.data(), sizeof raw[0], &count);
    if (rc == -ERANGE) {
      raw.resize(count + 1);
      continue;
    }
    if (rc < 0) return RbdError(rc, "listing snapshots of group '" + group + "'");
    break;
  }
  std::vector<GroupSnap> snaps;
  for (size_t i = 0; i < count; ++i) {
    snaps.push_back(
        GroupSnap{raw[i].name ? raw[i].name : "", raw[i].state == RBD_GROUP_SNAP_STATE_COMPLETE});
  }
  rbd_group_snap_list_cleanup(raw.data(), sizeof raw[0], count);
  return snaps;
}

}  // namespace qb::arrays::rbd
