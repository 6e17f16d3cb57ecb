// Plain C++ values for the control protocol (protocol/control.capnp documents each field).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace qb::proto {

inline constexpr std::uint16_t kControlProtocolMajor = 1;
inline constexpr std::uint16_t kControlProtocolMinor = 1;

// Bounds on what the daemon keeps from guests and sends in one reply. The control codec
// refuses a reply over CodecLimits (1 MiB payload, 4,096 list elements), so everything a reply
// carries is bounded well below that, whatever the guests or the host's lists hold.
//
// Whole replies: the reply builder stops adding list entries before their encoded size
// (EncodedReplyBytes in codec.h, an upper bound) passes this budget; the rest is paged.
inline constexpr std::size_t kControlReplyByteBudget = 768 * 1024;
// List verbs: the default and the largest page (entries per reply).
inline constexpr std::uint32_t kDefaultJobsPage = 100;
inline constexpr std::uint32_t kMaxJobsPage = 1000;
inline constexpr std::uint32_t kDefaultSnapshotsPage = 1000;
inline constexpr std::uint32_t kMaxSnapshotsPage = 2000;
// Per job, from all its guests together: writer results kept (report and catalog) and
// not-covered volumes listed; the rest is counted in the *_truncated fields.
inline constexpr std::size_t kMaxJobWriters = 256;
inline constexpr std::size_t kMaxJobWriterBytes = 64 * 1024;
inline constexpr std::size_t kMaxJobNotCovered = 256;
inline constexpr std::size_t kMaxJobNotCoveredBytes = 32 * 1024;
// One guest-sourced field kept by the daemon (a name, a state, a reason, a message).
inline constexpr std::size_t kMaxGuestFieldBytes = 512;
static_assert(kMaxJobWriterBytes + kMaxJobNotCoveredBytes < kControlReplyByteBudget / 4,
              "one job's guest lists must leave room for the rest of a reply");
static_assert(kMaxJobWriters + kMaxJobNotCovered < 4096, "under the codec's list limit");
static_assert(kMaxJobsPage < 4096 && kMaxSnapshotsPage < 4096, "under the codec's list limit");

enum class VssMode : std::uint8_t { kCopy = 0, kFull = 1 };

struct ListGuests {
  bool operator==(const ListGuests&) const = default;
};
struct GuestStatusRequest {
  std::string vm;
  bool operator==(const GuestStatusRequest&) const = default;
};
struct SnapshotRequest {
  std::vector<std::string> vms;
  std::string group;
  VssMode vss_mode = VssMode::kCopy;
  bool allow_partial = false;
  std::uint32_t lease_ms = 0;
  bool operator==(const SnapshotRequest&) const = default;
};
struct ListSnapshots {
  std::string vm;
  bool operator==(const ListSnapshots&) const = default;
};
struct DeleteSnapshot {
  std::string snapshot_id;
  bool operator==(const DeleteSnapshot&) const = default;
};
struct ExposeRequest {
  std::string snapshot_id;
  std::string as_name;
  bool operator==(const ExposeRequest&) const = default;
};
struct RollbackRequest {
  std::string vm;
  std::string snapshot_id;
  bool operator==(const RollbackRequest&) const = default;
};
struct PruneRequest {
  std::string vm;
  bool operator==(const PruneRequest&) const = default;
};
struct ListJobs {
  bool operator==(const ListJobs&) const = default;
};
struct ThawRequest {
  std::string vm;
  bool operator==(const ThawRequest&) const = default;
};

using ControlRequestBody =
    std::variant<ListGuests, GuestStatusRequest, SnapshotRequest, ListSnapshots, DeleteSnapshot,
                 ExposeRequest, RollbackRequest, PruneRequest, ListJobs, ThawRequest>;

// Which part of a list verb's list to send (control.capnp Page; 0/0 = the default page).
struct Page {
  std::uint32_t limit = 0;
  std::uint32_t offset = 0;
  bool operator==(const Page&) const = default;
};

struct ControlRequest {
  std::uint64_t request_id = 0;
  std::uint16_t protocol_major = kControlProtocolMajor;
  ControlRequestBody body;
  Page page{};  // listJobs / listSnapshots only
  bool operator==(const ControlRequest&) const = default;
};

struct ControlError {
  std::uint16_t code = 0;  // a qb::Code value
  std::string message;
  bool operator==(const ControlError&) const = default;
};

struct GuestInfo {
  std::string name;
  std::string source;
  std::string endpoint;
  std::string link_state;
  std::string agent_version;
  std::string os_name;
  bool frozen = false;
  std::string frozen_job_id;
  std::uint32_t lease_left_ms = 0;
  std::vector<std::string> luns;
  std::string busy_job_id;
  std::string last_error;
  bool operator==(const GuestInfo&) const = default;
};

struct PhaseTiming {
  std::string phase;
  std::uint64_t duration_us = 0;
  bool operator==(const PhaseTiming&) const = default;
};

enum class WriterPhase : std::uint8_t { kUnknown = 0, kFreeze = 1, kThaw = 2 };

// "freeze", "thaw" or "unknown".
inline const char* WriterPhaseName(WriterPhase p) {
  return p == WriterPhase::kFreeze ? "freeze" : p == WriterPhase::kThaw ? "thaw" : "unknown";
}

struct WriterInfo {
  std::string vm;
  std::string name;
  WriterPhase phase = WriterPhase::kUnknown;
  bool ok = false;
  std::string state;
  bool operator==(const WriterInfo&) const = default;
};

struct SnapshotInfo {
  std::string snapshot_id;
  std::string vm;
  std::string job_id;
  std::string backend;
  std::string lun;
  std::string array_name;
  std::string consistency;
  std::string created_at;
  bool operator==(const SnapshotInfo&) const = default;
};

struct JobReport {
  std::string job_id;
  std::vector<std::string> vms;
  std::string state;
  std::string consistency;
  std::string error;
  std::uint16_t error_code = 0;
  std::vector<PhaseTiming> phases;
  std::uint64_t freeze_window_us = 0;
  std::vector<SnapshotInfo> snapshots;
  std::vector<std::string> not_covered;
  std::vector<std::string> writers;
  std::string started_at;
  std::uint32_t writers_truncated = 0;
  std::uint32_t not_covered_truncated = 0;
  std::vector<WriterInfo> writer_details{};
  bool operator==(const JobReport&) const = default;
};

struct GuestList {
  std::vector<GuestInfo> guests;
  bool operator==(const GuestList&) const = default;
};
struct SnapshotList {
  std::vector<SnapshotInfo> snapshots;
  bool operator==(const SnapshotList&) const = default;
};
struct Done {
  std::string what;
  bool operator==(const Done&) const = default;
};
struct JobList {
  std::vector<JobReport> jobs;
  bool operator==(const JobList&) const = default;
};

// Alternatives in the order of ControlReply.body's union members.
using ControlReplyBody =
    std::variant<ControlError, GuestList, GuestInfo, JobReport, SnapshotList, Done, JobList>;

struct ControlReply {
  std::uint64_t request_id = 0;
  ControlReplyBody body;
  bool more = false;              // list verbs: more entries follow (ask from next_offset)
  std::uint32_t next_offset = 0;  // with `more`: the offset of the first entry not sent
  bool operator==(const ControlReply&) const = default;
};

}  // namespace qb::proto
