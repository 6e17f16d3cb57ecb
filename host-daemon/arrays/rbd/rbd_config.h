// Configuration of the Ceph RBD backend and the time limits it imposes on librados.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "common/status.h"
#include "common/time_limits.h"

namespace qb::arrays::rbd {

// librados abandons one OSD or mon operation after this long (rados_osd_op_timeout,
// rados_mon_op_timeout). Without it a librbd call against a dead or stopped OSD blocks its worker
// thread forever. An array operation that outlasts a whole default freeze lease is of no use
// inside a freeze, and outside one (remove, clone, list) the caller can try again later.
inline constexpr std::chrono::milliseconds kRbdOpTimeout = limits::kDefaultLease;

// Connecting (mon session and cephx handshake, client_mount_timeout) gives up after this long.
inline constexpr std::chrono::milliseconds kRbdConnectTimeout = limits::kRequestTimeout;

// FindByKey waits at most this long for a snapshot call of the same job key that is still running
// in this process (one that outlived its deadline) before it answers kBusy. Nothing an array does
// is worth waiting for past the longest lease any agent grants.
inline constexpr std::chrono::milliseconds kRbdSettleLimit = limits::kMaxLease;

// How the backend reaches the cluster. Comes from the daemon config. The keyring holds the
// cephx secret: only its path is kept here, and neither the path's content nor any key is ever
// logged or put into a Status message.
struct RbdConfig {
  // Name the backend is registered under (BackendSet key, LunSpec::backend).
  std::string name = "rbd";
  // ceph.conf path; empty: librados' default search (CEPH_CONF, /etc/ceph/$cluster.conf, ...).
  std::string conf_path;
  // Cluster name ($cluster in ceph.conf paths).
  std::string cluster = "ceph";
  // cephx user without the "client." prefix.
  std::string client_id = "admin";
  // Keyring path; empty: whatever ceph.conf says.
  std::string keyring_path;
  // Per-operation limits handed to librados (whole seconds, rounded up, at least 1 s).
  std::chrono::milliseconds op_timeout = kRbdOpTimeout;
  std::chrono::milliseconds connect_timeout = kRbdConnectTimeout;
};

// Builds the config of backend `name` from the keys of its [backends.<name>] table (type "rbd"),
// as the daemon config hands them over (strings). Keys:
//   conf = "/etc/ceph/ceph.conf"        ceph.conf path (default: librados' own search)
//   cluster = "ceph"                    cluster name, for the default paths (default "ceph")
//   client_id = "quiesce"               cephx user without "client." (default "admin")
//   keyring = "/etc/ceph/ceph.client.quiesce.keyring"   (default: what ceph.conf says)
//   op_timeout_ms = 10000               per librados operation (default kRbdOpTimeout)
//   connect_timeout_ms = 10000          (default kRbdConnectTimeout)
// kInvalidArgument naming the key for an unknown key, a relative path or a bad number. Values
// never appear in messages except paths and numbers (no secret is a config value here).
// A keyring that exists is checked too (CheckKeyringFile): refused → kPermissionDenied naming
// the path; a warning is logged.
Result<RbdConfig> RbdConfigFromSettings(const std::string& name,
                                        const std::map<std::string, std::string>& settings);

// The keyring holds the cephx secret and librados opens it by path, so its owner and mode are
// checked at config load. Refused (kPermissionDenied, naming the path and why): not a regular
// file, not owned by root (or the daemon's user), readable or writable by others, or writable
// by group. Accepted with a warning (returned, for the log): readable by its group, e.g. the
// common 0640 root:ceph, which lets every member of that group read the secret. Accepted
// silently: 0600 / 0400. A missing file is not checked here (librados reports it on connect;
// "" is returned). BLOCKING (one stat).
Result<std::string> CheckKeyringFile(const std::string& path);

}  // namespace qb::arrays::rbd
