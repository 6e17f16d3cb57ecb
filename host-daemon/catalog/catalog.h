// The catalog: what jobs ran and which snapshots exist, in SQLite (WAL), with schema migrations
// tracked in PRAGMA user_version.
//
// Threading: every call is BLOCKING (disk I/O) and must run on the daemon's worker pool, never
// on the io thread. One Catalog owns one connection guarded by a mutex, so calls from several
// worker threads are serialised and safe.
//
// Consistency labels (invariant 2 of DESIGN.md): a snapshot row is born crash-consistent.
// The ONLY way a row becomes application-consistent is MarkJobApplicationConsistent(), the one
// call the job runner makes after it verified that the array call succeeded before Thaw was
// sent and the agent held its freeze for the whole window. AddSnapshot() and SetConsistency()
// refuse the application-consistent label (kPermissionDenied), so no other path can mislabel.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/time_limits.h"

namespace qb::catalog {

// How long a catalog call waits for a lock held by another connection (another process, e.g.
// an admin's sqlite3 shell) before failing with kBusy. Half a control request's time limit,
// so a waiting call still answers its client in time.
inline constexpr std::chrono::milliseconds kCatalogBusyTimeout = qb::limits::kRequestTimeout / 2;

enum class Consistency { kCrashConsistent, kApplicationConsistent };

// Exactly "crash-consistent" / "application-consistent" (stored and shown as such).
std::string_view ConsistencyLabel(Consistency consistency);
// Parses a label; kInvalidArgument for anything but the two exact strings.
Result<Consistency> ParseConsistency(std::string_view label);

enum class JobState {
  kRunning,     // BeginJob called, FinishJob not yet: after a crash these are "unfinished"
  kSucceeded,   // every step worked
  kFailed,      // the job failed (error says why); snapshots it left are recorded or removed
  kReconciled,  // a restarted daemon closed a job it found unfinished
};
std::string_view JobStateName(JobState state);  // "running", "succeeded", "failed", "reconciled"
Result<JobState> ParseJobState(std::string_view name);

// What the job runner knows when a job starts.
struct JobRow {
  std::string job_key{};           // ValidateJobKey()-valid; unique across the catalog
  std::vector<std::string> vms{};  // VMs the job covers (one, or a group's members)
  std::string group{};             // group name, empty for a single-VM job
  std::chrono::system_clock::time_point started{};
};

// One timed phase ("plan", "prepare", "freeze", "snapshot", "thaw", "verify", "record").
struct PhaseTiming {
  std::string phase{};
  std::chrono::microseconds duration{0};
};

// What the job runner knows when a job ends.
struct JobOutcome {
  JobState state = JobState::kFailed;  // must not be kRunning
  // The job's overall label, if it produced snapshots. kApplicationConsistent is accepted only
  // when every snapshot row of the job already is (after MarkJobApplicationConsistent).
  std::optional<Consistency> consistency{};
  std::string error{};  // empty on success
  std::vector<PhaseTiming> phases{};
  std::string writer_results_json{};    // writer / hook results as reported (JSON text), or ""
  std::string backup_components_doc{};  // the VSS backup components document, or ""
  std::chrono::system_clock::time_point finished{};
};

// A job as stored.
struct JobRecord {
  int64_t id = 0;
  JobRow row{};
  JobState state = JobState::kRunning;
  std::optional<Consistency> consistency{};
  std::string error{};
  std::vector<PhaseTiming> phases{};
  std::string writer_results_json{};
  std::string backup_components_doc{};
  std::optional<std::chrono::system_clock::time_point> finished{};
};

// One snapshot of one LUN of one VM.
struct SnapshotRow {
  std::string id{};  // caller-chosen, unique (e.g. the array name); kConflict if taken
  std::string vm{};
  int64_t job_id = 0;  // the job that created it (must exist)
  std::string backend{};
  std::string lun{};         // LunSpec::volume
  std::string array_name{};  // SnapshotRecord::array_name
  Consistency consistency = Consistency::kCrashConsistent;
  std::chrono::system_clock::time_point created{};
};

// Evidence the job runner hands to MarkJobApplicationConsistent. Both must be true.
struct FreezeVerification {
  // The array call returned success BEFORE Thaw was sent.
  bool snapshot_succeeded_before_thaw = false;
  // Every agent of the job reported its freeze held from Frozen until it received Thaw.
  bool freeze_held_whole_window = false;
};

class Catalog {
 public:
  // Opens (creating if missing) the catalog at `path` (":memory:" for tests), turns on WAL and
  // foreign keys, and migrates the schema to the current version.
  // kIoError: cannot open / not a database / locked. kVersionMismatch: the file's schema is
  // newer than this binary knows (refuses to touch it).
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path);

  virtual ~Catalog() = default;

  // The schema version this binary writes (PRAGMA user_version after Open()).
  static int CurrentSchemaVersion();

  // --- Jobs --------------------------------------------------------------------------------
  // Records a job in state running and returns its id. kConflict if job_key exists;
  // kInvalidArgument for an empty key or no VMs.
  virtual Result<int64_t> BeginJob(const JobRow& job) = 0;

  // Closes a running job. kNotFound: no such job. kConflict: the job is not running (finished
  // twice). kInvalidArgument: outcome.state is kRunning. kPermissionDenied: outcome claims
  // application-consistent but a snapshot row of the job is not (or it has none).
  virtual Status FinishJob(int64_t job_id, const JobOutcome& outcome) = 0;

  virtual Result<JobRecord> GetJob(int64_t job_id) = 0;                   // kNotFound
  virtual Result<JobRecord> GetJobByKey(const std::string& job_key) = 0;  // kNotFound

  // Jobs still in state running (left behind by a crash), oldest first.
  virtual Result<std::vector<JobRecord>> UnfinishedJobs() = 0;

  // The newest `limit` jobs, newest first.
  virtual Result<std::vector<JobRecord>> ListJobs(int limit) = 0;

  // --- Snapshots ---------------------------------------------------------------------------
  // Records a snapshot. kPermissionDenied if row.consistency is application-consistent (rows
  // are born crash-consistent; see MarkJobApplicationConsistent). kConflict: id exists.
  // kNotFound: job_id does not exist.
  virtual Status AddSnapshot(const SnapshotRow& row) = 0;

  // Snapshots of `vm`, oldest first ("" = every VM).
  virtual Result<std::vector<SnapshotRow>> ListSnapshots(const std::string& vm) = 0;

  // Snapshots created by job `job_id`, in insertion order.
  virtual Result<std::vector<SnapshotRow>> ListSnapshotsOfJob(int64_t job_id) = 0;

  virtual Result<SnapshotRow> GetSnapshot(const std::string& id) = 0;  // kNotFound

  // Deletes the row (the caller removed it from the array first). Missing = success.
  virtual Status DeleteSnapshot(const std::string& id) = 0;

  // Sets a row's label. Only kCrashConsistent is accepted here (a downgrade, e.g. a late
  // snapshot recorded by policy); kApplicationConsistent gives kPermissionDenied.
  // kNotFound: no such row.
  virtual Status SetConsistency(const std::string& id, Consistency consistency) = 0;

  // THE one path to application-consistent: labels every snapshot row of running job
  // `job_id` application-consistent, in one transaction, and returns how many rows changed.
  // Call only after Thaw, with the evidence gathered by the job runner.
  // kPermissionDenied: either evidence flag is false (nothing changes). kNotFound: no such
  // job. kConflict: the job is no longer running (a reconciled or finished job can never be
  // promoted). kInvalidArgument: the job has no snapshot rows.
  virtual Result<int> MarkJobApplicationConsistent(int64_t job_id,
                                                   const FreezeVerification& evidence) = 0;

  // --- Retention ---------------------------------------------------------------------------
  // Snapshots of `vm` that retention would remove, oldest first. A snapshot is KEPT when it
  // is among the newest `keep_last` of the VM, or younger than `max_age` at `now`; it is a
  // candidate only when no set rule keeps it. With neither rule set nothing is a candidate.
  // Snapshots of one job count as one generation (a job's LUNs are kept or pruned together).
  virtual Result<std::vector<SnapshotRow>> PruneCandidates(
      const std::string& vm, std::optional<uint32_t> keep_last,
      std::optional<std::chrono::seconds> max_age, std::chrono::system_clock::time_point now) = 0;
};

}  // namespace qb::catalog
