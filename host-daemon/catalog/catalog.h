// The catalog: what jobs ran and which snapshots exist, in SQLite (WAL), with schema migrations
// tracked in PRAGMA user_version.
//
// Threading: every call is BLOCKING (disk I/O) and must run on the daemon's worker pool, never
// on the io thread. One Catalog owns one connection guarded by a mutex, so calls from several
// worker threads are serialised and safe.
//
// Consistency labels (invariant 2 of DESIGN.md): a snapshot row is born crash-consistent.
// The ONLY way a row becomes application-consistent is RecordJob() with verified evidence, the
// one call the job runner makes after it verified that the array call succeeded before Thaw
// was sent and the agent held its freeze for the whole window. RecordJob() adds the job's rows,
// labels them and closes the job in ONE transaction: a crash leaves either the running job
// with none of them, or all of it. AddSnapshot() refuses the application-consistent label
// (kPermissionDenied), so no other path can mislabel.
//
// Contradictory (what the catalog never holds, after any crash): a present snapshot row whose
// label differs from its job's label, or a present row of a finished job that has no label.
// A finished job's label is derived from its rows when they are written: application-
// consistent only through RecordJob() with evidence (then every row of the job is), otherwise
// crash-consistent when the job has rows, and none when it has none. A late row added to a
// finished job without a label gives it crash-consistent in the same transaction. (A running
// job has no label yet; rows it holds are crash-consistent. Rows removed later by delete or
// retention do not change the job's label: a job may have fewer rows than it made.)
//
// Deletion journal: a row in state `deleting` is a snapshot whose removal from the array was
// decided (delete, retention, or a failed group's members) and may have happened. It is
// journaled BEFORE the array call; the row goes only after the array removed the snapshot. A
// restarted daemon finishes every pending deletion (PendingDeletions()). Listings, prune
// candidates and the consistency rules above consider present rows only.
//
// Schema versions: 1 first schema, 2 indexes, 3 the deletion journal (snapshots.state), each
// job's LUN journal (job_luns) and jobs.array_call_late (typed, where version 2 had only a
// note in the error text; the migration derives it from that note).
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

// One LUN a job will snapshot, journaled when the job begins: a restarted daemon looks for
// the job's snapshots on exactly these, whatever its configuration says by then.
struct JobLun {
  std::string vm{};
  int64_t index = 0;      // the LUN's position in the VM's LUN list (snapshot ids use it)
  std::string backend{};  // LunSpec::backend
  std::string volume{};   // LunSpec::volume
  std::string wwn{};      // LunSpec::wwn
};

// What the job runner knows when a job starts.
struct JobRow {
  std::string job_key{};           // ValidateJobKey()-valid; unique across the catalog
  std::vector<std::string> vms{};  // VMs the job covers (one, or a group's members)
  std::string group{};             // group name, empty for a single-VM job
  std::chrono::system_clock::time_point started{};
  std::vector<JobLun> luns{};  // empty for jobs journaled before schema 3
};

// One timed phase ("plan", "prepare", "freeze", "snapshot", "thaw", "verify", "record").
struct PhaseTiming {
  std::string phase{};
  std::chrono::microseconds duration{0};
};

// What the job runner knows when a job ends.
struct JobOutcome {
  JobState state = JobState::kFailed;  // must not be kRunning
  // kApplicationConsistent asks for the label (RecordJob() with evidence only). Anything else
  // is ignored: the stored label is derived from the job's rows (see the header comment).
  std::optional<Consistency> consistency{};
  std::string error{};  // empty on success
  // The job ended with an array call still out (its snapshot may land later): a restarted
  // daemon sweeps such a job's LUNs again (Reconcile).
  bool array_call_late = false;
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
  bool array_call_late = false;
  std::vector<PhaseTiming> phases{};
  std::string writer_results_json{};
  std::string backup_components_doc{};
  std::optional<std::chrono::system_clock::time_point> finished{};
};

// A snapshot row's place in the deletion journal. Stored as "present" / "deleting".
enum class SnapshotState { kPresent, kDeleting };
std::string_view SnapshotStateName(SnapshotState state);

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
  SnapshotState state = SnapshotState::kPresent;
};

// Evidence the job runner hands to RecordJob. Both must be true.
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

  // Closes a running job without new rows and without evidence: RecordJob(job_id, {}, outcome,
  // nullopt). Its label is derived from the rows it already has.
  virtual Status FinishJob(int64_t job_id, const JobOutcome& outcome) = 0;

  // THE one path to application-consistent, and the one step that ends a job: in ONE
  // transaction adds `rows` (each crash-consistent as given, state present), labels the job
  // and its rows, and closes the job with `outcome`. The label is application-consistent only
  // when outcome.consistency asks for it, `evidence` is given with both flags true, and the
  // job then has at least one row; otherwise it is derived (crash-consistent with rows, none
  // without). kNotFound: no such job. kConflict: the job is not running (finished or
  // reconciled jobs are never promoted), or a row id is taken. kInvalidArgument:
  // outcome.state is kRunning, or application-consistent is asked for a job without rows.
  // kPermissionDenied: application-consistent asked without evidence, or an evidence flag is
  // false, or a row claims application-consistent. On any error nothing changes.
  virtual Status RecordJob(int64_t job_id, const std::vector<SnapshotRow>& rows,
                           const JobOutcome& outcome,
                           const std::optional<FreezeVerification>& evidence) = 0;

  virtual Result<JobRecord> GetJob(int64_t job_id) = 0;                   // kNotFound
  virtual Result<JobRecord> GetJobByKey(const std::string& job_key) = 0;  // kNotFound

  // Jobs still in state running (left behind by a crash), oldest first.
  virtual Result<std::vector<JobRecord>> UnfinishedJobs() = 0;

  // The newest `limit` jobs, newest first.
  virtual Result<std::vector<JobRecord>> ListJobs(int limit) = 0;

  // --- Snapshots ---------------------------------------------------------------------------
  // Records one late snapshot (one that landed after its job stopped waiting, or was found by
  // a reconcile), crash-consistent, in state row.state. When its job is finished without a
  // label, the job gets crash-consistent in the same transaction (never a contradiction).
  // kPermissionDenied if row.consistency is application-consistent (rows are born
  // crash-consistent; see RecordJob). kConflict: id exists, or the job is labelled
  // application-consistent (such a job has no late snapshots). kNotFound: no such job.
  virtual Status AddSnapshot(const SnapshotRow& row) = 0;

  // Present snapshots of `vm`, oldest first ("" = every VM).
  virtual Result<std::vector<SnapshotRow>> ListSnapshots(const std::string& vm) = 0;

  // Snapshots created by job `job_id` (present and deleting), in insertion order.
  virtual Result<std::vector<SnapshotRow>> ListSnapshotsOfJob(int64_t job_id) = 0;

  virtual Result<SnapshotRow> GetSnapshot(const std::string& id) = 0;  // kNotFound

  // Journals the decision to remove a snapshot: its row goes to state deleting (hidden from
  // listings and retention). Call BEFORE the array call. kNotFound: no such row.
  virtual Status MarkDeleting(const std::string& id) = 0;
  // Puts a deleting row back to present (the array call failed and left the snapshot).
  // kNotFound: no such row.
  virtual Status MarkPresent(const std::string& id) = 0;
  // Rows in state deleting, oldest first: removals a killed daemon left half done.
  virtual Result<std::vector<SnapshotRow>> PendingDeletions() = 0;

  // Deletes the row (the caller removed it from the array first). Missing = success.
  virtual Status DeleteSnapshot(const std::string& id) = 0;

  // --- Retention ---------------------------------------------------------------------------
  // Present snapshots of `vm` that retention would remove, oldest first. A snapshot is KEPT when it
  // is among the newest `keep_last` of the VM, or younger than `max_age` at `now`; it is a
  // candidate only when no set rule keeps it. With neither rule set nothing is a candidate.
  // Snapshots of one job count as one generation (a job's LUNs are kept or pruned together).
  virtual Result<std::vector<SnapshotRow>> PruneCandidates(
      const std::string& vm, std::optional<uint32_t> keep_last,
      std::optional<std::chrono::seconds> max_age, std::chrono::system_clock::time_point now) = 0;
};

// Creates (or migrates) the catalog file at `path` only up to schema `version` and closes it,
// so upgrade tests can build a catalog as an older daemon left it. kInvalidArgument: no such
// version.
Status CreateCatalogAtVersion(const std::string& path, int version);

}  // namespace qb::catalog
