#include "host-daemon/catalog/catalog.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "common/crash_point.h"
#include "host-daemon/catalog/sqlite_handle.h"

namespace qb::catalog {
namespace {

using std::chrono::system_clock;

// Schema migrations, applied in order; migration i brings user_version from i to i + 1.
// Never edit a released entry: append a new one.
const char* const kMigrations[] = {
    // 0 -> 1: the first schema.
    R"sql(
    CREATE TABLE jobs (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      job_key TEXT NOT NULL UNIQUE,
      group_name TEXT NOT NULL DEFAULT '',
      started_us INTEGER NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'reconciled')),
      consistency TEXT CHECK (consistency IN ('application-consistent', 'crash-consistent')),
      error TEXT NOT NULL DEFAULT '',
      writer_results TEXT NOT NULL DEFAULT '',
      backup_components TEXT NOT NULL DEFAULT '',
      finished_us INTEGER
    );
    CREATE TABLE job_vms (
      job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      vm TEXT NOT NULL,
      PRIMARY KEY (job_id, position)
    );
    CREATE TABLE job_phases (
      job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      phase TEXT NOT NULL,
      duration_us INTEGER NOT NULL,
      PRIMARY KEY (job_id, position)
    );
    CREATE TABLE snapshots (
      id TEXT PRIMARY KEY,
      vm TEXT NOT NULL,
      job_id INTEGER NOT NULL REFERENCES jobs(id),
      backend TEXT NOT NULL,
      lun TEXT NOT NULL,
      array_name TEXT NOT NULL,
      consistency TEXT NOT NULL
        CHECK (consistency IN ('application-consistent', 'crash-consistent')),
      created_us INTEGER NOT NULL
    );
    )sql",
    // 1 -> 2: indexes for the per-VM and per-job listings.
    R"sql(
    CREATE INDEX snapshots_by_vm ON snapshots (vm, created_us);
    CREATE INDEX snapshots_by_job ON snapshots (job_id);
    CREATE INDEX jobs_by_state ON jobs (state);
    )sql",
    // 2 -> 3: the deletion journal (a row is marked deleting before the array call) and each
    // job's LUNs as it began (reconcile looks for its snapshots there, not in today's config).
    R"sql(
    ALTER TABLE snapshots ADD COLUMN state TEXT NOT NULL DEFAULT 'present'
      CHECK (state IN ('present', 'deleting'));
    CREATE TABLE job_luns (
      job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      position INTEGER NOT NULL,
      vm TEXT NOT NULL,
      lun_index INTEGER NOT NULL,
      backend TEXT NOT NULL,
      volume TEXT NOT NULL,
      wwn TEXT NOT NULL DEFAULT '',
      PRIMARY KEY (job_id, position)
    );
    ALTER TABLE jobs ADD COLUMN array_call_late INTEGER NOT NULL DEFAULT 0
      CHECK (array_call_late IN (0, 1));
    UPDATE jobs SET array_call_late = 1
      WHERE state = 'failed' AND error LIKE '%(array call late:%';
    )sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

int64_t ToMicros(system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
system_clock::time_point FromMicros(int64_t us) {
  return system_clock::time_point(
      std::chrono::duration_cast<system_clock::duration>(std::chrono::microseconds(us)));
}

// Brings the schema of `db` from its user_version up to `target` (<= kSchemaVersion), one
// transaction per step. kVersionMismatch: the file is newer than this binary.
Status MigrateDb(sqlite3* db, int target) {
  int version = 0;
  {
    Statement query(db, "PRAGMA user_version");
    if (!query.Step())
      return query.status().ok() ? Error(Code::kIoError, "no user_version") : query.status();
    version = static_cast<int>(query.Int(0));
  }
  if (version > kSchemaVersion) {
    return Error(Code::kVersionMismatch, "catalog schema version " + std::to_string(version) +
                                             " is newer than this daemon's " +
                                             std::to_string(kSchemaVersion));
  }
  for (; version < target; ++version) {
    Transaction tx(db);
    QB_RETURN_IF_ERROR(tx.status());
    QB_RETURN_IF_ERROR(Exec(db, kMigrations[version]));
    QB_RETURN_IF_ERROR(Exec(db, "PRAGMA user_version = " + std::to_string(version + 1)));
    QB_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

constexpr std::string_view kJobColumns =
    "id, job_key, group_name, started_us, state, consistency, error, writer_results, "
    "backup_components, finished_us, array_call_late";
constexpr std::string_view kSnapshotColumns =
    "id, vm, job_id, backend, lun, array_name, consistency, created_us, state";

class SqliteCatalog final : public Catalog {
 public:
  explicit SqliteCatalog(SqliteDb db) : db_(std::move(db)) {}

  Result<int64_t> BeginJob(const JobRow& job) override {
    if (job.job_key.empty()) return Error(Code::kInvalidArgument, "job key is empty");
    if (job.vms.empty()) return Error(Code::kInvalidArgument, "job covers no VM");
    std::lock_guard lock(mutex_);
    Transaction tx(db_.get());
    QB_RETURN_IF_ERROR(tx.status());
    Statement insert(db_.get(),
                     "INSERT INTO jobs (job_key, group_name, started_us, state) "
                     "VALUES (?, ?, ?, 'running')");
    insert.Bind(1, job.job_key).Bind(2, job.group).Bind(3, ToMicros(job.started));
    Status status = insert.Run();
    if (!status.ok()) return status.WithContext("begin job " + job.job_key);
    const int64_t id = sqlite3_last_insert_rowid(db_.get());
    for (std::size_t i = 0; i < job.vms.size(); ++i) {
      Statement vm(db_.get(), "INSERT INTO job_vms (job_id, position, vm) VALUES (?, ?, ?)");
      vm.Bind(1, id).Bind(2, static_cast<int64_t>(i)).Bind(3, job.vms[i]);
      QB_RETURN_IF_ERROR(vm.Run());
    }
    for (std::size_t i = 0; i < job.luns.size(); ++i) {
      const JobLun& lun = job.luns[i];
      Statement insert_lun(db_.get(),
                           "INSERT INTO job_luns (job_id, position, vm, lun_index, backend, "
                           "volume, wwn) VALUES (?, ?, ?, ?, ?, ?, ?)");
      insert_lun.Bind(1, id)
          .Bind(2, static_cast<int64_t>(i))
          .Bind(3, lun.vm)
          .Bind(4, lun.index)
          .Bind(5, lun.backend)
          .Bind(6, lun.volume)
          .Bind(7, lun.wwn);
      QB_RETURN_IF_ERROR(insert_lun.Run());
    }
    QB_RETURN_IF_ERROR(tx.Commit());
    return id;
  }

  Status FinishJob(int64_t job_id, const JobOutcome& outcome) override {
    return RecordJob(job_id, {}, outcome, std::nullopt);
  }

  Status RecordJob(int64_t job_id, const std::vector<SnapshotRow>& rows, const JobOutcome& outcome,
                   const std::optional<FreezeVerification>& evidence) override {
    if (outcome.state == JobState::kRunning) {
      return Error(Code::kInvalidArgument, "RecordJob with state running");
    }
    const bool wants_app = outcome.consistency == Consistency::kApplicationConsistent;
    if (wants_app) {
      if (!evidence) {
        return Error(Code::kPermissionDenied, "job " + std::to_string(job_id) +
                                                  " cannot finish application-consistent "
                                                  "without verified evidence");
      }
      if (!evidence->snapshot_succeeded_before_thaw || !evidence->freeze_held_whole_window) {
        return Error(Code::kPermissionDenied,
                     "job " + std::to_string(job_id) + " not application-consistent: " +
                         (!evidence->snapshot_succeeded_before_thaw
                              ? "the array call did not succeed before thaw"
                              : "the freeze did not hold for the whole window"));
      }
    }
    for (const auto& row : rows) {
      if (row.consistency != Consistency::kCrashConsistent) {
        return Error(Code::kPermissionDenied,
                     "snapshot " + row.id + ": rows are recorded crash-consistent");
      }
      if (row.id.empty()) return Error(Code::kInvalidArgument, "snapshot id is empty");
    }
    std::lock_guard lock(mutex_);
    Transaction tx(db_.get());
    QB_RETURN_IF_ERROR(tx.status());
    auto state = StateLocked(job_id);
    if (!state.ok()) return state.status();
    if (*state != JobState::kRunning) {
      return Error(Code::kConflict, "job " + std::to_string(job_id) + " is already " +
                                        std::string(JobStateName(*state)));
    }
    for (const auto& row : rows) {
      SnapshotRow stored = row;
      stored.job_id = job_id;
      stored.state = SnapshotState::kPresent;
      Status added = InsertSnapshotLocked(stored);
      if (!added.ok()) return added.WithContext("record job " + std::to_string(job_id));
    }
    // Inside the transaction: a kill here must leave none of the rows (tests arm it).
    CrashPoint("record.after-rows");
    Statement count(db_.get(),
                    "SELECT COUNT(*) FROM snapshots WHERE job_id = ? AND state = 'present'");
    count.Bind(1, job_id);
    if (!count.Step()) return count.status().ok() ? Error(Code::kIoError, "count") : count.status();
    const int64_t present = count.Int(0);
    std::optional<std::string> label;
    if (wants_app) {
      if (present == 0) {
        return Error(Code::kInvalidArgument,
                     "job " + std::to_string(job_id) + " has no snapshot rows to promote");
      }
      QB_RETURN_IF_ERROR(Statement(db_.get(),
                                   "UPDATE snapshots SET consistency = 'application-consistent' "
                                   "WHERE job_id = ?")
                             .Bind(1, job_id)
                             .Run());
      label = std::string(ConsistencyLabel(Consistency::kApplicationConsistent));
    } else if (present > 0) {
      label = std::string(ConsistencyLabel(Consistency::kCrashConsistent));
    }
    Statement update(db_.get(),
                     "UPDATE jobs SET state = ?, consistency = ?, error = ?, writer_results = ?, "
                     "backup_components = ?, finished_us = ?, array_call_late = ? WHERE id = ?");
    update.Bind(1, JobStateName(outcome.state))
        .BindOptional(2, label)
        .Bind(3, outcome.error)
        .Bind(4, outcome.writer_results_json)
        .Bind(5, outcome.backup_components_doc)
        .Bind(6, ToMicros(outcome.finished))
        .Bind(7, static_cast<int64_t>(outcome.array_call_late ? 1 : 0))
        .Bind(8, job_id);
    QB_RETURN_IF_ERROR(update.Run());
    QB_RETURN_IF_ERROR(
        Statement(db_.get(), "DELETE FROM job_phases WHERE job_id = ?").Bind(1, job_id).Run());
    for (std::size_t i = 0; i < outcome.phases.size(); ++i) {
      Statement phase(db_.get(),
                      "INSERT INTO job_phases (job_id, position, phase, duration_us) "
                      "VALUES (?, ?, ?, ?)");
      phase.Bind(1, job_id)
          .Bind(2, static_cast<int64_t>(i))
          .Bind(3, outcome.phases[i].phase)
          .Bind(4, static_cast<int64_t>(outcome.phases[i].duration.count()));
      QB_RETURN_IF_ERROR(phase.Run());
    }
    return tx.Commit();
  }

  Result<JobRecord> GetJob(int64_t job_id) override {
    std::lock_guard lock(mutex_);
    auto jobs = QueryJobsLocked("WHERE id = ?", [&](Statement& s) { s.Bind(1, job_id); });
    if (!jobs.ok()) return jobs.status();
    if (jobs->empty()) return Error(Code::kNotFound, "no job " + std::to_string(job_id));
    return std::move(jobs->front());
  }

  Result<JobRecord> GetJobByKey(const std::string& job_key) override {
    std::lock_guard lock(mutex_);
    auto jobs = QueryJobsLocked("WHERE job_key = ?", [&](Statement& s) { s.Bind(1, job_key); });
    if (!jobs.ok()) return jobs.status();
    if (jobs->empty()) return Error(Code::kNotFound, "no job with key " + job_key);
    return std::move(jobs->front());
  }

  Result<std::vector<JobRecord>> UnfinishedJobs() override {
    std::lock_guard lock(mutex_);
    return QueryJobsLocked("WHERE state = 'running' ORDER BY started_us, id", [](Statement&) {});
  }

  Result<std::vector<JobRecord>> ListJobs(int limit) override {
    std::lock_guard lock(mutex_);
    return QueryJobsLocked("ORDER BY started_us DESC, id DESC LIMIT ?",
                           [&](Statement& s) { s.Bind(1, static_cast<int64_t>(limit)); });
  }

  Status AddSnapshot(const SnapshotRow& row) override {
    if (row.consistency != Consistency::kCrashConsistent) {
      return Error(Code::kPermissionDenied, "snapshot " + row.id +
                                                ": rows are recorded crash-consistent; only "
                                                "RecordJob with evidence may promote them");
    }
    if (row.id.empty()) return Error(Code::kInvalidArgument, "snapshot id is empty");
    std::lock_guard lock(mutex_);
    Transaction tx(db_.get());
    QB_RETURN_IF_ERROR(tx.status());
    auto state = StateLocked(row.job_id);
    if (!state.ok()) return state.status();
    Statement label(db_.get(), "SELECT consistency FROM jobs WHERE id = ?");
    label.Bind(1, row.job_id);
    if (!label.Step()) return label.status().ok() ? Error(Code::kIoError, "label") : label.status();
    if (!label.IsNull(0) &&
        label.Text(0) == ConsistencyLabel(Consistency::kApplicationConsistent)) {
      return Error(Code::kConflict, "snapshot " + row.id + ": job " + std::to_string(row.job_id) +
                                        " is application-consistent and takes no late rows");
    }
    Status status = InsertSnapshotLocked(row);
    if (!status.ok()) return status.WithContext("add snapshot " + row.id);
    if (*state != JobState::kRunning && row.state == SnapshotState::kPresent) {
      QB_RETURN_IF_ERROR(Statement(db_.get(),
                                   "UPDATE jobs SET consistency = 'crash-consistent' "
                                   "WHERE id = ? AND consistency IS NULL")
                             .Bind(1, row.job_id)
                             .Run());
    }
    return tx.Commit();
  }

  Result<std::vector<SnapshotRow>> ListSnapshots(const std::string& vm) override {
    std::lock_guard lock(mutex_);
    if (vm.empty()) {
      return QuerySnapshotsLocked("WHERE state = 'present' ORDER BY created_us, rowid",
                                  [](Statement&) {});
    }
    return QuerySnapshotsLocked("WHERE vm = ? AND state = 'present' ORDER BY created_us, rowid",
                                [&](Statement& s) { s.Bind(1, vm); });
  }

  Result<std::vector<SnapshotRow>> ListSnapshotsOfJob(int64_t job_id) override {
    std::lock_guard lock(mutex_);
    return QuerySnapshotsLocked("WHERE job_id = ? ORDER BY rowid",
                                [&](Statement& s) { s.Bind(1, job_id); });
  }

  Result<SnapshotRow> GetSnapshot(const std::string& id) override {
    std::lock_guard lock(mutex_);
    auto rows = QuerySnapshotsLocked("WHERE id = ?", [&](Statement& s) { s.Bind(1, id); });
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return Error(Code::kNotFound, "no snapshot " + id);
    return std::move(rows->front());
  }

  Status DeleteSnapshot(const std::string& id) override {
    std::lock_guard lock(mutex_);
    return Statement(db_.get(), "DELETE FROM snapshots WHERE id = ?").Bind(1, id).Run();
  }

  Status MarkDeleting(const std::string& id) override {
    return SetState(id, SnapshotState::kDeleting);
  }

  Status MarkPresent(const std::string& id) override {
    return SetState(id, SnapshotState::kPresent);
  }

  Result<std::vector<SnapshotRow>> PendingDeletions() override {
    std::lock_guard lock(mutex_);
    return QuerySnapshotsLocked("WHERE state = 'deleting' ORDER BY created_us, rowid",
                                [](Statement&) {});
  }

  Result<std::vector<SnapshotRow>> PruneCandidates(const std::string& vm,
                                                   std::optional<uint32_t> keep_last,
                                                   std::optional<std::chrono::seconds> max_age,
                                                   system_clock::time_point now) override {
    if (!keep_last && !max_age) return std::vector<SnapshotRow>{};
    std::vector<SnapshotRow> rows;
    {
      std::lock_guard lock(mutex_);
      auto listed = QuerySnapshotsLocked(
          "WHERE vm = ? AND state = 'present' "
          "ORDER BY created_us, rowid",
          [&](Statement& s) { s.Bind(1, vm); });
      if (!listed.ok()) return listed.status();
      rows = std::move(listed).value();
    }
    // A generation is one job; its age is its newest snapshot's.
    std::map<int64_t, system_clock::time_point> newest_of_job;
    for (const auto& row : rows) {
      auto [it, inserted] = newest_of_job.emplace(row.job_id, row.created);
      if (!inserted) it->second = std::max(it->second, row.created);
    }
    std::vector<std::pair<system_clock::time_point, int64_t>> generations;
    for (const auto& [job, created] : newest_of_job) generations.emplace_back(created, job);
    std::sort(generations.rbegin(), generations.rend());  // newest first
    std::set<int64_t> kept;
    for (std::size_t i = 0; i < generations.size(); ++i) {
      const bool kept_by_count = keep_last && i < *keep_last;
      const bool kept_by_age = max_age && now - generations[i].first < *max_age;
      if (kept_by_count || kept_by_age) kept.insert(generations[i].second);
    }
    std::vector<SnapshotRow> candidates;
    for (auto& row : rows) {
      if (kept.count(row.job_id) == 0) candidates.push_back(std::move(row));
    }
    return candidates;
  }

  Status Migrate() {
    std::lock_guard lock(mutex_);
    return MigrateDb(db_.get(), kSchemaVersion);
  }

 private:
  Status SetState(const std::string& id, SnapshotState state) {
    std::lock_guard lock(mutex_);
    Statement update(db_.get(), "UPDATE snapshots SET state = ? WHERE id = ?");
    update.Bind(1, SnapshotStateName(state)).Bind(2, id);
    QB_RETURN_IF_ERROR(update.Run());
    if (sqlite3_changes(db_.get()) == 0) return Error(Code::kNotFound, "no snapshot " + id);
    return Status::Ok();
  }

  // Inserts `row` as given (crash-consistent: the callers checked), in the caller's
  // transaction. kNotFound: no such job (foreign key); kConflict: id taken.
  Status InsertSnapshotLocked(const SnapshotRow& row) {
    Statement insert(db_.get(),
                     "INSERT INTO snapshots (id, vm, job_id, backend, lun, array_name, "
                     "consistency, created_us, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert.Bind(1, row.id)
        .Bind(2, row.vm)
        .Bind(3, row.job_id)
        .Bind(4, row.backend)
        .Bind(5, row.lun)
        .Bind(6, row.array_name)
        .Bind(7, ConsistencyLabel(Consistency::kCrashConsistent))
        .Bind(8, ToMicros(row.created))
        .Bind(9, SnapshotStateName(row.state));
    return insert.Run();
  }

  Result<JobState> StateLocked(int64_t job_id) {
    Statement query(db_.get(), "SELECT state FROM jobs WHERE id = ?");
    query.Bind(1, job_id);
    if (!query.Step()) {
      if (!query.status().ok()) return query.status();
      return Error(Code::kNotFound, "no job " + std::to_string(job_id));
    }
    return ParseJobState(query.Text(0));
  }

  template <typename BindFn>
  Result<std::vector<JobRecord>> QueryJobsLocked(std::string_view tail, BindFn bind) {
    Statement query(db_.get(),
                    "SELECT " + std::string(kJobColumns) + " FROM jobs " + std::string(tail));
    bind(query);
    std::vector<JobRecord> jobs;
    while (query.Step()) {
      JobRecord job;
      job.id = query.Int(0);
      job.row.job_key = query.Text(1);
      job.row.group = query.Text(2);
      job.row.started = FromMicros(query.Int(3));
      auto state = ParseJobState(query.Text(4));
      if (!state.ok()) return state.status();
      job.state = *state;
      if (!query.IsNull(5)) {
        auto consistency = ParseConsistency(query.Text(5));
        if (!consistency.ok()) return consistency.status();
        job.consistency = *consistency;
      }
      job.error = query.Text(6);
      job.writer_results_json = query.Text(7);
      job.backup_components_doc = query.Text(8);
      if (!query.IsNull(9)) job.finished = FromMicros(query.Int(9));
      job.array_call_late = query.Int(10) != 0;
      jobs.push_back(std::move(job));
    }
    QB_RETURN_IF_ERROR(query.status());
    for (auto& job : jobs) {
      Statement vms(db_.get(), "SELECT vm FROM job_vms WHERE job_id = ? ORDER BY position");
      vms.Bind(1, job.id);
      while (vms.Step()) job.row.vms.push_back(vms.Text(0));
      QB_RETURN_IF_ERROR(vms.status());
      Statement phases(db_.get(),
                       "SELECT phase, duration_us FROM job_phases WHERE job_id = ? "
                       "ORDER BY position");
      phases.Bind(1, job.id);
      while (phases.Step()) {
        job.phases.push_back({phases.Text(0), std::chrono::microseconds(phases.Int(1))});
      }
      QB_RETURN_IF_ERROR(phases.status());
      Statement luns(db_.get(),
                     "SELECT vm, lun_index, backend, volume, wwn FROM job_luns WHERE job_id = ? "
                     "ORDER BY position");
      luns.Bind(1, job.id);
      while (luns.Step()) {
        job.row.luns.push_back(
            {luns.Text(0), luns.Int(1), luns.Text(2), luns.Text(3), luns.Text(4)});
      }
      QB_RETURN_IF_ERROR(luns.status());
    }
    return jobs;
  }

  template <typename BindFn>
  Result<std::vector<SnapshotRow>> QuerySnapshotsLocked(std::string_view tail, BindFn bind) {
    Statement query(db_.get(), "SELECT " + std::string(kSnapshotColumns) + " FROM snapshots " +
                                   std::string(tail));
    bind(query);
    std::vector<SnapshotRow> rows;
    while (query.Step()) {
      SnapshotRow row;
      row.id = query.Text(0);
      row.vm = query.Text(1);
      row.job_id = query.Int(2);
      row.backend = query.Text(3);
      row.lun = query.Text(4);
      row.array_name = query.Text(5);
      auto consistency = ParseConsistency(query.Text(6));
      if (!consistency.ok()) return consistency.status();
      row.consistency = *consistency;
      row.created = FromMicros(query.Int(7));
      row.state = query.Text(8) == SnapshotStateName(SnapshotState::kDeleting)
                      ? SnapshotState::kDeleting
                      : SnapshotState::kPresent;
      rows.push_back(std::move(row));
    }
    QB_RETURN_IF_ERROR(query.status());
    return rows;
  }

  std::mutex mutex_;
  SqliteDb db_;
};

}  // namespace

std::string_view ConsistencyLabel(Consistency consistency) {
  return consistency == Consistency::kApplicationConsistent ? "application-consistent"
                                                            : "crash-consistent";
}

Result<Consistency> ParseConsistency(std::string_view label) {
  if (label == "application-consistent") return Consistency::kApplicationConsistent;
  if (label == "crash-consistent") return Consistency::kCrashConsistent;
  return Error(Code::kInvalidArgument, "unknown consistency label '" + std::string(label) + "'");
}

std::string_view SnapshotStateName(SnapshotState state) {
  return state == SnapshotState::kDeleting ? "deleting" : "present";
}

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kReconciled:
      return "reconciled";
  }
  return "unknown";
}

Result<JobState> ParseJobState(std::string_view name) {
  for (JobState state :
       {JobState::kRunning, JobState::kSucceeded, JobState::kFailed, JobState::kReconciled}) {
    if (JobStateName(state) == name) return state;
  }
  return Error(Code::kInvalidArgument, "unknown job state '" + std::string(name) + "'");
}

int Catalog::CurrentSchemaVersion() { return kSchemaVersion; }

Status CreateCatalogAtVersion(const std::string& path, int version) {
  if (version < 0 || version > kSchemaVersion) {
    return Error(Code::kInvalidArgument, "no schema version " + std::to_string(version));
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) return Error(Code::kIoError, "open catalog " + path);
  return MigrateDb(db.get(), version);
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) {
    return Error(Code::kIoError,
                 "open catalog " + path + ": " + (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db.get(), static_cast<int>(kCatalogBusyTimeout.count()));
  if (path != ":memory:") {
    Status wal = Exec(db.get(), "PRAGMA journal_mode = WAL");
    if (!wal.ok()) return wal.WithContext("catalog " + path);
  }
  QB_RETURN_IF_ERROR(Exec(db.get(), "PRAGMA foreign_keys = ON"));
  QB_RETURN_IF_ERROR(Exec(db.get(), "PRAGMA synchronous = FULL"));
  auto catalog = std::make_unique<SqliteCatalog>(std::move(db));
  Status migrated = catalog->Migrate();
  if (!migrated.ok()) return migrated.WithContext("catalog " + path);
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace qb::catalog
