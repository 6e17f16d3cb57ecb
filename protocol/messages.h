// Plain C++ values for every agent-protocol message (protocol/agent.capnp documents each
// field). The codec (protocol/codec.h) converts between these and the wire; nothing above the
// codec touches Cap'n Proto readers, so no exception from untrusted bytes can escape it.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace qb::proto {

inline constexpr std::uint16_t kAgentProtocolMajor = 1;
inline constexpr std::uint16_t kAgentProtocolMinor = 0;

enum class OsFamily : std::uint8_t { kUnknown = 0, kLinux = 1, kWindows = 2 };
enum class FreezeMode : std::uint8_t { kFsfreeze = 0, kVssCopy = 1, kVssFull = 2 };
enum class WriterKind : std::uint8_t { kHook = 0, kVssWriter = 1 };
enum class ErrorCode : std::uint16_t {
  kUnknown = 0,
  kBadRequest = 1,
  kVersionMismatch = 2,
  kBusy = 3,
  kUnknownJob = 4,
  kFreezeFailed = 5,
  kHookFailed = 6,
  kAlreadyFrozen = 7,
  kUnsupported = 8,
  kInternal = 9,
  kStaleSession = 10,
  kNotFound = 11,
};

const char* FreezeModeName(FreezeMode mode);
const char* ErrorCodeName(ErrorCode code);

struct OsInfo {
  OsFamily family = OsFamily::kUnknown;
  std::string name;
  std::string version;
  std::string host_name;
  bool operator==(const OsInfo&) const = default;
};

struct FreezeState {
  bool frozen = false;
  std::string job_id;
  std::vector<std::string> frozen_volumes;
  std::uint64_t frozen_since_ns = 0;
  std::uint32_t lease_left_ms = 0;
  FreezeMode mode = FreezeMode::kFsfreeze;
  std::string last_job_id;
  bool last_held_whole_window = false;
  std::string last_not_held_reason;
  bool operator==(const FreezeState&) const = default;
};

struct StaleFreeze {
  std::string job_id;
  std::vector<std::string> volumes;
  std::uint64_t thawed_at_ns = 0;
  bool operator==(const StaleFreeze&) const = default;
};

struct Hello {
  std::uint16_t protocol_major = kAgentProtocolMajor;
  std::uint16_t protocol_minor = kAgentProtocolMinor;
  std::string daemon_version;
  std::string host_name;
  bool operator==(const Hello&) const = default;
};

struct HelloReply {
  std::uint16_t protocol_major = kAgentProtocolMajor;
  std::uint16_t protocol_minor = kAgentProtocolMinor;
  std::string agent_version;
  OsInfo os;
  std::vector<std::string> capabilities;
  FreezeState freeze_state;
  StaleFreeze stale_freeze_cleared;
  std::uint64_t guest_monotonic_ns = 0;
  bool operator==(const HelloReply&) const = default;
};

struct InventoryRequest {
  bool operator==(const InventoryRequest&) const = default;
};

struct Volume {
  std::string name;
  std::string device;
  std::string fs_type;
  bool freezable = false;
  std::vector<std::string> disk_names;
  std::uint64_t size_bytes = 0;
  std::vector<std::string> mount_points;
  bool operator==(const Volume&) const = default;
};

struct Disk {
  std::string name;
  std::string wwn;
  std::string serial;
  std::string vendor;
  std::string model;
  std::string bus;
  std::uint64_t size_bytes = 0;
  bool operator==(const Disk&) const = default;
};

struct Inventory {
  std::vector<Volume> volumes;
  std::vector<Disk> disks;
  bool operator==(const Inventory&) const = default;
};

struct Freeze {
  std::string job_id;
  std::vector<std::string> volumes;
  bool all_volumes = false;
  FreezeMode mode = FreezeMode::kFsfreeze;
  std::uint32_t lease_ms = 0;
  bool operator==(const Freeze&) const = default;
};

struct SkippedVolume {
  std::string volume;
  std::string reason;
  bool operator==(const SkippedVolume&) const = default;
};

struct WriterResult {
  std::string name;
  WriterKind kind = WriterKind::kHook;
  bool ok = false;
  std::string state;
  std::string output;
  std::uint32_t duration_ms = 0;
  std::string phase;
  bool operator==(const WriterResult&) const = default;
};

struct Frozen {
  std::string job_id;
  std::vector<std::string> frozen_volumes;
  std::vector<SkippedVolume> skipped_volumes;
  std::vector<WriterResult> writers;
  std::uint64_t frozen_at_ns = 0;
  std::uint32_t lease_granted_ms = 0;
  std::uint64_t lease_expires_at_ns = 0;
  std::uint64_t freeze_duration_ns = 0;
  bool operator==(const Frozen&) const = default;
};

struct Thaw {
  std::string job_id;
  bool snapshot_ok = false;
  bool operator==(const Thaw&) const = default;
};

struct Thawed {
  std::string job_id;
  bool held_whole_window = false;
  std::string not_held_reason;
  bool lease_expired = false;
  std::uint64_t lease_expired_at_ns = 0;
  std::uint64_t frozen_at_ns = 0;
  std::uint64_t thawed_at_ns = 0;
  std::vector<WriterResult> writers;
  std::string backup_components_document;
  std::vector<std::string> thawed_volumes;
  bool already_thawed = false;
  bool operator==(const Thawed&) const = default;
};

struct StatusRequest {
  bool operator==(const StatusRequest&) const = default;
};

struct AgentStatus {
  FreezeState state;
  std::uint64_t uptime_ms = 0;
  std::uint64_t guest_monotonic_ns = 0;
  bool operator==(const AgentStatus&) const = default;
};

struct Ping {
  bool operator==(const Ping&) const = default;
};

struct Pong {
  std::uint64_t guest_monotonic_ns = 0;
  bool operator==(const Pong&) const = default;
};

struct ErrorReply {
  ErrorCode code = ErrorCode::kUnknown;
  std::string message;
  bool operator==(const ErrorReply&) const = default;
};

// Alternatives in the order of Envelope.body's union members.
using AgentBody = std::variant<Hello, HelloReply, InventoryRequest, Inventory, Freeze, Frozen, Thaw,
                               Thawed, StatusRequest, AgentStatus, Ping, Pong, ErrorReply>;

struct AgentMessage {
  std::uint64_t request_id = 0;
  std::uint64_t nonce = 0;
  AgentBody body;
  bool operator==(const AgentMessage&) const = default;
};

// Name of the body's alternative ("hello", "frozen", ...), for logs and errors.
const char* BodyName(const AgentBody& body);

// True for the alternatives a daemon sends (requests); false for replies.
bool IsRequest(const AgentBody& body);

}  // namespace qb::proto
