// RAII owners for the librados / librbd C handles, and the librbd list calls turned into plain
// values. Only this folder includes <rados/librados.h> and <rbd/librbd.h>.
//
// Ownership chain: an RbdImage keeps its IoCtx alive, an IoCtx keeps its RadosCluster alive, so
// handles are always closed image -> ioctx -> cluster, whatever order their owners drop them in.
// Every call here BLOCKS (network round trips bounded by RbdConfig's op timeouts); run them on a
// worker thread, never on an io thread. librados/librbd handles are thread-safe; these wrappers
// add no locking of their own.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "host-daemon/arrays/rbd/rbd_config.h"

namespace qb::arrays::rbd {

// Maps a negative librados/librbd return code to a Status: -ENOENT kNotFound, -ETIMEDOUT
// kTimeout, -EEXIST kConflict, -EPERM/-EACCES kPermissionDenied, -EBUSY kBusy, anything else
// kArrayError. The message is "<what>: <strerror> (<errno>)".
Status RbdError(int rc, std::string_view what);

// A connected cluster handle (rados_t). Destruction shuts the client down.
class RadosCluster {
 public:
  // Creates the client, reads `config.conf_path`, applies the keyring path and the op / mount
  // timeouts, and connects. Blocks up to about config.connect_timeout.
  // kTimeout / kPermissionDenied / kNotFound (conf or keyring missing) / kArrayError.
  static Result<std::shared_ptr<RadosCluster>> Connect(const RbdConfig& config);

  ~RadosCluster();
  RadosCluster(const RadosCluster&) = delete;
  RadosCluster& operator=(const RadosCluster&) = delete;

  rados_t get() const { return cluster_; }

  // Pool id of `pool`, or kNotFound.
  Result<int64_t> PoolId(const std::string& pool) const;
  // Pool name of `pool_id`, or kNotFound.
  Result<std::string> PoolName(int64_t pool_id) const;

 private:
  explicit RadosCluster(rados_t cluster) : cluster_(cluster) {}
  rados_t cluster_;
};

// An I/O context on one pool (and RADOS namespace). Destruction destroys the context.
class IoCtx {
 public:
  // kNotFound when the pool does not exist.
  static Result<std::shared_ptr<IoCtx>> Open(std::shared_ptr<RadosCluster> cluster,
                                             const std::string& pool, const std::string& ns);
  ~IoCtx();
  IoCtx(const IoCtx&) = delete;
  IoCtx& operator=(const IoCtx&) = delete;

  rados_ioctx_t get() const { return ioctx_; }
  const std::string& pool() const { return pool_; }
  const std::string& ns() const { return ns_; }
  RadosCluster& cluster() const { return *cluster_; }

 private:
  IoCtx(std::shared_ptr<RadosCluster> cluster, rados_ioctx_t ioctx, std::string pool,
        std::string ns)
      : cluster_(std::move(cluster)), ioctx_(ioctx), pool_(std::move(pool)), ns_(std::move(ns)) {}
  std::shared_ptr<RadosCluster> cluster_;
  rados_ioctx_t ioctx_;
  std::string pool_;
  std::string ns_;
};

// An open RBD image. Destruction closes it (which may flush and release a lock: bounded by the
// op timeout).
class RbdImage {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  // kNotFound when the image does not exist.
  static Result<std::shared_ptr<RbdImage>> Open(std::shared_ptr<IoCtx> ioctx,
                                                const std::string& name, Mode mode);
  ~RbdImage();
  RbdImage(const RbdImage&) = delete;
  RbdImage& operator=(const RbdImage&) = delete;

  rbd_image_t get() const { return image_; }
  const std::string& name() const { return name_; }
  IoCtx& ioctx() const { return *ioctx_; }
  const std::shared_ptr<IoCtx>& shared_ioctx() const { return ioctx_; }

 private:
  RbdImage(std::shared_ptr<IoCtx> ioctx, rbd_image_t image, std::string name)
      : ioctx_(std::move(ioctx)), image_(image), name_(std::move(name)) {}
  std::shared_ptr<IoCtx> ioctx_;
  rbd_image_t image_;
  std::string name_;
};

// One snapshot of an image as rbd_snap_list() reports it: user snapshots and the image's share
// of group snapshots (namespace kGroup, with the group's identity filled in).
struct ImageSnap {
  uint64_t id = 0;
  std::string name;  // for group snapshots librbd's internal per-image name
  rbd_snap_namespace_type_t ns_type = RBD_SNAP_NAMESPACE_TYPE_USER;
  int64_t group_pool = -1;      // kGroup only
  std::string group_name;       // kGroup only
  std::string group_snap_name;  // kGroup only
  std::chrono::system_clock::time_point created;
};
// Every snapshot of `image`, ordered by id (oldest first).
Result<std::vector<ImageSnap>> ListImageSnaps(const RbdImage& image);

// The group `image` belongs to, or nullopt.
struct GroupRef {
  int64_t pool = -1;
  std::string name;
};
Result<std::optional<GroupRef>> GroupOfImage(const RbdImage& image);

struct GroupImage {
  int64_t pool = -1;
  std::string name;
  bool attached = false;  // false: an add or remove of this image was interrupted
};
// Images of group `group` in `ioctx`. kNotFound when the group does not exist.
Result<std::vector<GroupImage>> ListGroupImages(const IoCtx& ioctx, const std::string& group);

struct GroupSnap {
  std::string name;
  bool complete = false;
};
// Snapshots of group `group`. kNotFound when the group does not exist.
Result<std::vector<GroupSnap>> ListGroupSnaps(const IoCtx& ioctx, const std::string& group);

}  // namespace qb::arrays::rbd
