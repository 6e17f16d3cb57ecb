// quiesced's configuration: /etc/quiesce-bridge/quiesced.toml (see packaging/daemon/ for a
// commented sample). Parsing is strict: an unknown key, a wrong type or a bad value is an error
// naming the file, line and dotted key, so a typo never silently falls back to a default.
//
// The config says which LUNs belong to which guest and which backend snapshots them; guests
// never get a say in that (DESIGN.md invariant 4).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time_limits.h"

namespace qb::config {

inline constexpr std::string_view kDefaultConfigPath = "/etc/quiesce-bridge/quiesced.toml";

// Where a guest's agent listens (the daemon connects).
struct AgentEndpoint {
  enum class Kind { kUnix, kVsock };
  Kind kind = Kind::kUnix;
  std::string path{};  // kUnix: absolute socket path (the VM's virtio-serial chardev)
  uint32_t cid = 0;    // kVsock: guest CID (>= 3; 0-2 are reserved / the host)
  uint32_t port = 0;   // kVsock

  // "unix:/path" or "vsock:CID:PORT".
  std::string ToString() const;
};

// Parses "unix:/abs/path" or "vsock:CID:PORT". kInvalidArgument naming the problem (relative
// path, CID 0-2, port out of range, unknown scheme).
Result<AgentEndpoint> ParseAgentEndpoint(std::string_view text);

struct DaemonSettings {
  std::string control_socket = "/run/quiesce-bridge/quiesced.sock";
  uint32_t control_socket_mode = 0660;
  std::string control_socket_group{};  // empty: the daemon's own group
  std::string catalog_path = "/var/lib/quiesce-bridge/catalog.db";
  int worker_threads = 4;          // the blocking-call pool (array, sqlite, libvirt)
  std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
};

// One configured array backend instance. [backends.<name>]; `type` defaults to the name when
// the name is itself a type ("reflink", "exec").
struct BackendSettings {
  std::string name{};
  std::string type{};          // "reflink" | "exec" | "rbd" | "purity"
  std::string snapshot_dir{};  // reflink: absolute, or empty for "<LUN dir>/.qb-snapshots"
  std::string script{};        // exec: absolute path
  std::chrono::milliseconds timeout = qb::limits::kRequestTimeout;  // exec: per-run timeout
  // rbd and purity: their table's keys as strings (booleans "true"/"false", integers in
  // decimal), handed to their factories (RbdConfigFromSettings, CreatePurityBackend). The
  // parser has already checked the key names, the required keys and the value shapes.
  std::map<std::string, std::string> extra{};
  // Source lines, so an error a backend factory reports later still points into the file:
  // `line` is the [backends.NAME] table's, `key_lines` each key's (0 when unknown).
  int line = 0;
  std::map<std::string, int> key_lines{};
};

struct LunSettings {
  std::string backend{};  // a backend name from [backends]
  std::string volume{};
  std::string wwn{};  // normalised to lower-case hex, no separators; may be empty
  // The guest's name for this disk as its agent's inventory reports it ("vdb", "sdc",
  // "loop3"), for LUNs the guest cannot identify by WWN (file-backed LUNs, loop devices).
  // A kernel block device name: no '/', no whitespace; unique within the guest. May be empty.
  std::string disk{};
};

struct GuestSettings {
  std::string name{};
  AgentEndpoint agent{};
  std::vector<LunSettings> luns{};
};

// Members are VM names; they are not checked against [[guests]] because libvirt discovery can
// supply them at run time (the job layer reports an unknown member when a job runs).
struct GroupSettings {
  std::string name{};
  std::vector<std::string> vms{};
};

// Retention for one VM or group name ("*" = every VM without its own rule).
struct RetentionSettings {
  std::string target{};
  std::optional<uint32_t> keep_last{};
  std::optional<std::chrono::seconds> max_age{};
};

// Which backend handles a disk libvirt describes. Rules are tried in order; first match wins.
struct LunMappingRule {
  std::string disk_type{};      // "block" | "file" | "network"
  std::string protocol{};       // network only ("rbd"); empty matches any
  std::string source_prefix{};  // matches the start of the source path / "pool/image"; empty: any
  std::string backend{};        // a backend name from [backends]
};

struct LibvirtSettings {
  bool enabled = false;  // true when a [libvirt] table is present
  std::string uri = "qemu:///system";
  std::string agent_port = "org.quiesce-bridge.agent.0";  // virtio-serial target name
  // Port the agent listens on for domains reached through their <vsock> CID.
  uint32_t agent_vsock_port = 4470;
  std::vector<LunMappingRule> lun_rules{};
};

// What to do with a snapshot that lands after its deadline (DESIGN.md invariant 2).
enum class LateSnapshotPolicy { kRemove, kRecordCrashConsistent };

struct Config {
  // The name errors are reported against (ParseConfig's source_name, usually the file path).
  std::string source_name{};
  DaemonSettings daemon{};
  std::vector<BackendSettings> backends{};
  std::vector<GuestSettings> guests{};
  std::vector<GroupSettings> groups{};
  std::vector<RetentionSettings> retention{};
  LibvirtSettings libvirt{};
  LateSnapshotPolicy late_snapshot_policy = LateSnapshotPolicy::kRemove;

  const BackendSettings* FindBackend(std::string_view name) const;
  const GuestSettings* FindGuest(std::string_view name) const;
  const GroupSettings* FindGroup(std::string_view name) const;
  // The rule for `vm_or_group`, else the "*" rule, else nullptr.
  const RetentionSettings* FindRetention(std::string_view vm_or_group) const;
};

// Parses TOML text. `source_name` (usually the file path) prefixes every error:
// "quiesced.toml:12: daemon.worker_thread: unknown key". kInvalidArgument for every problem:
// syntax, unknown key, wrong type, bad value, reference to an undefined backend, duplicate
// guest or group names.
Result<Config> ParseConfig(std::string_view toml_text, std::string_view source_name);

// Reads and parses `path`. kNotFound if the file does not exist, kIoError if unreadable.
Result<Config> LoadConfigFile(const std::string& path);

// "90s", "15m", "12h", "7d", "2w" or a bare number of seconds. kInvalidArgument otherwise.
Result<std::chrono::seconds> ParseAge(std::string_view text);

}  // namespace qb::config
