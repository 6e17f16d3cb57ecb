#include "host-daemon/catalog/catalog.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

namespace qb::catalog {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

const system_clock::time_point kT0 = system_clock::time_point(1'800'000'000s);

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "qb-catalog-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::unique_ptr<Catalog> OpenMemory() {
  auto catalog = Catalog::Open(":memory:");
  EXPECT_TRUE(catalog.ok()) << catalog.status().ToString();
  return std::move(catalog).value();
}

int64_t Begin(Catalog& catalog, const std::string& key, system_clock::time_point t,
              std::vector<std::string> vms = {"vm1"}) {
  auto id = catalog.BeginJob({.job_key = key, .vms = std::move(vms), .group = "", .started = t});
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? *id : -1;
}

SnapshotRow Snap(const std::string& id, int64_t job, system_clock::time_point t,
                 const std::string& vm = "vm1") {
  return SnapshotRow{.id = id,
                     .vm = vm,
                     .job_id = job,
                     .backend = "reflink",
                     .lun = "/luns/" + id,
                     .array_name = "/luns/.qb-snapshots/" + id,
                     .consistency = Consistency::kCrashConsistent,
                     .created = t};
}

// Contradictions as catalog.h defines them: rows of a finished job whose label is not the
// job's label (a job without a label has none).
int Contradictions(Catalog& catalog) {
  auto jobs = catalog.ListJobs(1000);
  EXPECT_TRUE(jobs.ok());
  int found = 0;
  for (const auto& job : *jobs) {
    if (job.state == JobState::kRunning) continue;
    auto rows = catalog.ListSnapshotsOfJob(job.id);
    EXPECT_TRUE(rows.ok());
    for (const auto& row : *rows) {
      if (!job.consistency || *job.consistency != row.consistency) ++found;
    }
  }
  return found;
}

TEST(CatalogTest, LabelsAreExact) {
  EXPECT_EQ(ConsistencyLabel(Consistency::kApplicationConsistent), "application-consistent");
  EXPECT_EQ(ConsistencyLabel(Consistency::kCrashConsistent), "crash-consistent");
  EXPECT_EQ(ParseConsistency("Application-Consistent").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(*ParseConsistency("crash-consistent"), Consistency::kCrashConsistent);
}

TEST(CatalogTest, JobLifecycleWithPhasesAndDocuments) {
  auto catalog = OpenMemory();
  const int64_t id = Begin(*catalog, "job1", kT0, {"vm1", "vm2"});
  EXPECT_EQ(catalog->BeginJob({.job_key = "job1", .vms = {"x"}, .group = "", .started = kT0})
                .status()
                .code(),
            Code::kConflict);
  auto unfinished = catalog->UnfinishedJobs();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ(unfinished->front().row.vms, (std::vector<std::string>{"vm1", "vm2"}));

  JobOutcome outcome{.state = JobState::kFailed,
                     .consistency = Consistency::kCrashConsistent,
                     .error = "array timeout",
                     .phases = {{"freeze", 40ms}, {"snapshot", 3ms}},
                     .writer_results_json = R"({"w":"ok"})",
                     .backup_components_doc = "<BCD/>",
                     .finished = kT0 + 1s};
  ASSERT_TRUE(catalog->FinishJob(id, outcome).ok());
  EXPECT_EQ(catalog->FinishJob(id, outcome).code(), Code::kConflict);
  EXPECT_EQ(catalog->FinishJob(id + 100, outcome).code(), Code::kNotFound);

  auto job = catalog->GetJobByKey("job1");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, JobState::kFailed);
  EXPECT_EQ(job->error, "array timeout");
  ASSERT_EQ(job->phases.size(), 2u);
  EXPECT_EQ(job->phases[0].phase, "freeze");
  EXPECT_EQ(job->phases[0].duration, 40ms);
  EXPECT_EQ(job->backup_components_doc, "<BCD/>");
  EXPECT_EQ(job->writer_results_json, R"({"w":"ok"})");
  ASSERT_TRUE(job->finished.has_value());
  EXPECT_EQ(*job->finished, kT0 + 1s);
  EXPECT_TRUE(catalog->UnfinishedJobs()->empty());
}

TEST(CatalogTest, RowsAreBornCrashConsistentAndOnlyVerifiedJobsArePromoted) {
  auto catalog = OpenMemory();
  const int64_t id = Begin(*catalog, "job1", kT0);
  SnapshotRow claimed = Snap("s1", id, kT0);
  claimed.consistency = Consistency::kApplicationConsistent;
  EXPECT_EQ(catalog->AddSnapshot(claimed).code(), Code::kPermissionDenied);
  const JobOutcome app{.state = JobState::kSucceeded,
                       .consistency = Consistency::kApplicationConsistent,
                       .finished = kT0};
  const std::vector<SnapshotRow> rows = {Snap("s1", id, kT0), Snap("s2", id, kT0)};
  EXPECT_EQ(catalog->RecordJob(id, {claimed}, app, FreezeVerification{true, true}).code(),
            Code::kPermissionDenied);
  // No evidence, or either flag false: refused, and nothing changes.
  EXPECT_EQ(catalog->FinishJob(id, app).code(), Code::kPermissionDenied);
  EXPECT_EQ(catalog->RecordJob(id, rows, app, std::nullopt).code(), Code::kPermissionDenied);
  EXPECT_EQ(catalog->RecordJob(id, rows, app, FreezeVerification{true, false}).code(),
            Code::kPermissionDenied);
  EXPECT_EQ(catalog->RecordJob(id, rows, app, FreezeVerification{false, true}).code(),
            Code::kPermissionDenied);
  EXPECT_EQ(catalog->GetSnapshot("s1").status().code(), Code::kNotFound);
  EXPECT_EQ(catalog->GetJob(id)->state, JobState::kRunning);
  // Application-consistent needs rows.
  EXPECT_EQ(catalog->RecordJob(id, {}, app, FreezeVerification{true, true}).code(),
            Code::kInvalidArgument);

  ASSERT_TRUE(catalog->RecordJob(id, rows, app, FreezeVerification{true, true}).ok());
  EXPECT_EQ(catalog->GetSnapshot("s1")->consistency, Consistency::kApplicationConsistent);
  EXPECT_EQ(catalog->GetSnapshot("s2")->consistency, Consistency::kApplicationConsistent);
  auto job = catalog->GetJob(id);
  EXPECT_EQ(job->state, JobState::kSucceeded);
  EXPECT_EQ(job->consistency, Consistency::kApplicationConsistent);
  // Finished jobs can never be recorded again, even with evidence; they take no late rows.
  EXPECT_EQ(catalog->RecordJob(id, {}, app, FreezeVerification{true, true}).code(),
            Code::kConflict);
  EXPECT_EQ(catalog->AddSnapshot(Snap("s3", id, kT0)).code(), Code::kConflict);
  EXPECT_EQ(catalog->AddSnapshot(Snap("s4", id + 7, kT0)).code(), Code::kNotFound);
  EXPECT_EQ(Contradictions(*catalog), 0);
}

TEST(CatalogTest, ReconciledJobCannotBePromoted) {
  auto catalog = OpenMemory();
  const int64_t id = Begin(*catalog, "job1", kT0);
  ASSERT_TRUE(catalog->AddSnapshot(Snap("s1", id, kT0)).ok());
  ASSERT_TRUE(catalog->FinishJob(id, {.state = JobState::kReconciled, .finished = kT0}).ok());
  EXPECT_EQ(catalog->GetJob(id)->consistency, Consistency::kCrashConsistent);
  EXPECT_EQ(catalog
                ->RecordJob(id, {},
                            {.state = JobState::kSucceeded,
                             .consistency = Consistency::kApplicationConsistent,
                             .finished = kT0},
                            FreezeVerification{true, true})
                .code(),
            Code::kConflict);
  EXPECT_EQ(catalog->GetSnapshot("s1")->consistency, Consistency::kCrashConsistent);
}

// Issue 12, defect 1: rows, label and the job's end are one transaction, and the label is the
// rows' label whatever the caller asked (a job never disowns or mislabels its rows).
TEST(CatalogTest, RecordJobIsAllOrNothingAndNeverContradictory) {
  auto catalog = OpenMemory();
  const int64_t taken = Begin(*catalog, "taken", kT0);
  ASSERT_TRUE(catalog->AddSnapshot(Snap("dup", taken, kT0)).ok());
  const int64_t id = Begin(*catalog, "job", kT0);
  // The second row's id is taken: the first row is not kept, the job stays running.
  EXPECT_EQ(catalog
                ->RecordJob(id, {Snap("new", id, kT0), Snap("dup", id, kT0)},
                            {.state = JobState::kSucceeded,
                             .consistency = Consistency::kApplicationConsistent,
                             .finished = kT0},
                            FreezeVerification{true, true})
                .code(),
            Code::kConflict);
  EXPECT_EQ(catalog->GetSnapshot("new").status().code(), Code::kNotFound);
  EXPECT_EQ(catalog->GetJob(id)->state, JobState::kRunning);
  // A failed job with rows is crash-consistent even when the caller asked for no label; one
  // without rows has none even when it asked for crash-consistent.
  ASSERT_TRUE(catalog
                  ->RecordJob(id, {Snap("new", id, kT0)},
                              {.state = JobState::kFailed, .finished = kT0}, std::nullopt)
                  .ok());
  EXPECT_EQ(catalog->GetJob(id)->consistency, Consistency::kCrashConsistent);
  const int64_t empty = Begin(*catalog, "empty", kT0);
  ASSERT_TRUE(catalog
                  ->FinishJob(empty, {.state = JobState::kFailed,
                                      .consistency = Consistency::kCrashConsistent,
                                      .finished = kT0})
                  .ok());
  EXPECT_FALSE(catalog->GetJob(empty)->consistency.has_value());
  ASSERT_TRUE(catalog->FinishJob(taken, {.state = JobState::kFailed, .finished = kT0}).ok());
  EXPECT_EQ(Contradictions(*catalog), 0);
}

TEST(CatalogTest, DeletionJournalHidesRowsUntilTheyAreGone) {
  auto catalog = OpenMemory();
  const int64_t id = Begin(*catalog, "job", kT0);
  ASSERT_TRUE(catalog
                  ->RecordJob(id, {Snap("a", id, kT0), Snap("b", id, kT0 + 1s)},
                              {.state = JobState::kFailed, .finished = kT0}, std::nullopt)
                  .ok());
  EXPECT_EQ(catalog->MarkDeleting("nope").code(), Code::kNotFound);
  ASSERT_TRUE(catalog->MarkDeleting("a").ok());
  EXPECT_EQ(catalog->GetSnapshot("a")->state, SnapshotState::kDeleting);
  EXPECT_EQ(catalog->ListSnapshots("vm1")->size(), 1u);
  EXPECT_EQ(catalog->ListSnapshotsOfJob(id)->size(), 2u);
  EXPECT_TRUE(catalog->PruneCandidates("vm1", 0u, std::nullopt, kT0)->size() == 1u);
  auto pending = catalog->PendingDeletions();
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ(pending->front().id, "a");
  ASSERT_TRUE(catalog->MarkPresent("a").ok());
  EXPECT_TRUE(catalog->PendingDeletions()->empty());
  ASSERT_TRUE(catalog->MarkDeleting("a").ok());
  ASSERT_TRUE(catalog->DeleteSnapshot("a").ok());
  EXPECT_TRUE(catalog->PendingDeletions()->empty());
  // A failed group's members are journaled for removal as deleting rows of a running job.
  const int64_t group = Begin(*catalog, "group", kT0);
  SnapshotRow doomed = Snap("g", group, kT0);
  doomed.state = SnapshotState::kDeleting;
  ASSERT_TRUE(catalog->AddSnapshot(doomed).ok());
  EXPECT_EQ(catalog->PendingDeletions()->size(), 1u);
  ASSERT_TRUE(catalog->FinishJob(group, {.state = JobState::kFailed, .finished = kT0}).ok());
  EXPECT_FALSE(catalog->GetJob(group)->consistency.has_value());
}

// Issue 12, defect 4: a job's LUNs are journaled when it begins and read back as they were.
TEST(CatalogTest, JobLunsAreJournaled) {
  auto catalog = OpenMemory();
  JobRow row{.job_key = "luns", .vms = {"vm1", "vm2"}, .group = "g", .started = kT0};
  row.luns = {{"vm1", 0, "reflink", "/d/a.raw", ""}, {"vm2", 1, "exec", "vol-b", "6000abcd"}};
  auto id = catalog->BeginJob(row);
  ASSERT_TRUE(id.ok());
  auto job = catalog->GetJob(*id);
  ASSERT_TRUE(job.ok());
  ASSERT_EQ(job->row.luns.size(), 2u);
  EXPECT_EQ(job->row.luns[1].vm, "vm2");
  EXPECT_EQ(job->row.luns[1].index, 1);
  EXPECT_EQ(job->row.luns[1].backend, "exec");
  EXPECT_EQ(job->row.luns[1].volume, "vol-b");
  EXPECT_EQ(job->row.luns[1].wwn, "6000abcd");
  EXPECT_EQ(catalog->UnfinishedJobs()->front().row.luns.size(), 2u);
}

// Schema 2 -> 3: a catalog an older daemon left (rows, a running job) opens, keeps its rows
// (present), gains the journals, and its old job has no LUN journal.
TEST(CatalogTest, UpgradesFromThePreviousSchema) {
  TempDir dir;
  const std::string path = dir.File("v2.db");
  ASSERT_EQ(Catalog::CurrentSchemaVersion(), 3);
  ASSERT_TRUE(CreateCatalogAtVersion(path, 2).ok());
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  const char* fill =
      "INSERT INTO jobs (job_key, group_name, started_us, state) VALUES ('old', '', 1, "
      "'running');"
      "INSERT INTO job_vms (job_id, position, vm) VALUES (1, 0, 'vm1');"
      "INSERT INTO jobs (job_key, group_name, started_us, state, error) VALUES ('late', '', 2, "
      "'failed', 'timeout (array call late: its snapshot is removed or recorded "
      "crash-consistent when it lands)');"
      "INSERT INTO snapshots (id, vm, job_id, backend, lun, array_name, consistency, created_us) "
      "VALUES ('old.vm1.0', 'vm1', 1, 'reflink', '/d/a.raw', '/d/s/qb-old-a.raw', "
      "'crash-consistent', 1);"
      "PRAGMA user_version;";
  ASSERT_EQ(sqlite3_exec(raw, fill, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(raw);
  sqlite3_close(raw);

  auto catalog = Catalog::Open(path);
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  auto row = (*catalog)->GetSnapshot("old.vm1.0");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->state, SnapshotState::kPresent);
  auto jobs = (*catalog)->UnfinishedJobs();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_TRUE(jobs->front().row.luns.empty());
  EXPECT_FALSE(jobs->front().array_call_late);
  EXPECT_TRUE((*catalog)->GetJobByKey("late")->array_call_late);
  ASSERT_TRUE((*catalog)->MarkDeleting("old.vm1.0").ok());
  EXPECT_EQ((*catalog)->PendingDeletions()->size(), 1u);
  EXPECT_EQ(CreateCatalogAtVersion(dir.File("x.db"), 4).code(), Code::kInvalidArgument);
}

TEST(CatalogTest, ListsGetsAndDeletes) {
  auto catalog = OpenMemory();
  const int64_t a = Begin(*catalog, "a", kT0);
  const int64_t b = Begin(*catalog, "b", kT0 + 10s, {"vm2"});
  ASSERT_TRUE(catalog->AddSnapshot(Snap("a1", a, kT0)).ok());
  ASSERT_TRUE(catalog->AddSnapshot(Snap("b1", b, kT0 + 10s, "vm2")).ok());
  EXPECT_EQ(catalog->ListSnapshots("vm1")->size(), 1u);
  EXPECT_EQ(catalog->ListSnapshots("")->size(), 2u);
  EXPECT_EQ(catalog->ListSnapshotsOfJob(b)->front().id, "b1");
  EXPECT_EQ(catalog->GetSnapshot("zz").status().code(), Code::kNotFound);
  auto jobs = catalog->ListJobs(1);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().row.job_key, "b");
  ASSERT_TRUE(catalog->DeleteSnapshot("a1").ok());
  ASSERT_TRUE(catalog->DeleteSnapshot("a1").ok());
  EXPECT_TRUE(catalog->ListSnapshots("vm1")->empty());
}

TEST(CatalogTest, PruneKeepsLastNOrYoungerThanMaxAgeByGeneration) {
  auto catalog = OpenMemory();
  // Five jobs of vm1, one hour apart, two LUNs each; one job of vm2.
  for (int i = 0; i < 5; ++i) {
    const auto t = kT0 + std::chrono::hours(i);
    const int64_t job = Begin(*catalog, "j" + std::to_string(i), t);
    ASSERT_TRUE(catalog->AddSnapshot(Snap("j" + std::to_string(i) + "a", job, t)).ok());
    ASSERT_TRUE(catalog->AddSnapshot(Snap("j" + std::to_string(i) + "b", job, t)).ok());
  }
  const int64_t other = Begin(*catalog, "other", kT0, {"vm2"});
  ASSERT_TRUE(catalog->AddSnapshot(Snap("o", other, kT0, "vm2")).ok());
  const auto now = kT0 + std::chrono::hours(4) + 30min;

  EXPECT_TRUE(catalog->PruneCandidates("vm1", std::nullopt, std::nullopt, now)->empty());

  auto by_count = catalog->PruneCandidates("vm1", 2u, std::nullopt, now);
  ASSERT_TRUE(by_count.ok());
  ASSERT_EQ(by_count->size(), 6u);  // jobs 0..2, two rows each
  EXPECT_EQ(by_count->front().id, "j0a");
  EXPECT_EQ(by_count->back().id, "j2b");

  auto by_age = catalog->PruneCandidates("vm1", std::nullopt, std::chrono::hours(2), now);
  ASSERT_TRUE(by_age.ok());
  EXPECT_EQ(by_age->size(), 6u);  // jobs 3 (1.5 h old) and 4 (0.5 h old) are kept

  // Either rule keeps: last 1 or younger than 3 h keeps jobs 2, 3, 4.
  auto both = catalog->PruneCandidates("vm1", 1u, std::chrono::hours(3), now);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->size(), 4u);
  auto zero = catalog->PruneCandidates("vm1", 0u, std::nullopt, now);
  EXPECT_EQ(zero->size(), 10u);
}

TEST(CatalogTest, FileCatalogUsesWalAndSurvivesReopen) {
  TempDir dir;
  const std::string path = dir.File("catalog.db");
  int64_t id = 0;
  {
    auto catalog = Catalog::Open(path);
    ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
    id = Begin(**catalog, "persist", kT0);
    ASSERT_TRUE((*catalog)->AddSnapshot(Snap("p1", id, kT0)).ok());
  }
  auto reopened = Catalog::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->GetSnapshot("p1")->job_id, id);
  ASSERT_EQ((*reopened)->UnfinishedJobs()->size(), 1u);

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), Catalog::CurrentSchemaVersion());
  sqlite3_finalize(stmt);
  sqlite3_close(raw);
}

TEST(CatalogTest, MigratesAVersionOneFileAndRefusesANewerOne) {
  TempDir dir;
  const std::string old_path = dir.File("v1.db");
  {
    // A version-1 file: the tables exist, the later indexes and journals do not.
    ASSERT_TRUE(CreateCatalogAtVersion(old_path, 1).ok());
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(old_path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "INSERT INTO jobs (job_key, group_name, started_us, state) "
                           "VALUES ('old', '', 1, 'running')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto migrated = Catalog::Open(old_path);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  EXPECT_TRUE((*migrated)->GetJobByKey("old").ok());
  migrated.value().reset();

  const std::string new_path = dir.File("future.db");
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(new_path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version = 999", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }
  EXPECT_EQ(Catalog::Open(new_path).status().code(), Code::kVersionMismatch);

  const std::string garbage = dir.File("garbage.db");
  std::ofstream(garbage) << std::string(4096, 'x');
  EXPECT_EQ(Catalog::Open(garbage).status().code(), Code::kIoError);
  EXPECT_EQ(Catalog::Open(dir.File("no/such/dir.db")).status().code(), Code::kIoError);
}

TEST(CatalogTest, ConcurrentWorkersSerialiseSafely) {
  TempDir dir;
  auto opened = Catalog::Open(dir.File("concurrent.db"));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Catalog& catalog = **opened;
  constexpr int kThreads = 4, kJobsPerThread = 25;
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int j = 0; j < kJobsPerThread; ++j) {
        const std::string key = "t" + std::to_string(t) + "_" + std::to_string(j);
        auto id = catalog.BeginJob({.job_key = key, .vms = {"vm1"}, .group = "", .started = kT0});
        if (!id.ok() || !catalog.AddSnapshot(Snap(key, *id, kT0)).ok() ||
            !catalog.FinishJob(*id, {.state = JobState::kFailed, .finished = kT0}).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(catalog.ListSnapshots("vm1")->size(),
            static_cast<std::size_t>(kThreads * kJobsPerThread));
  EXPECT_TRUE(catalog.UnfinishedJobs()->empty());
}

}  // namespace
}  // namespace qb::catalog

namespace qb::catalog {
namespace {

// Issue 12, defect 1: a late snapshot recorded for a job already closed without a label must
// give the job the crash-consistent label in the same step, never a row the job disowns.
TEST(CatalogTest, LateRowOnAJobClosedWithoutLabelIsNotContradictory) {
  auto catalog = OpenMemory();
  const int64_t id = Begin(*catalog, "late", kT0);
  ASSERT_TRUE(catalog->FinishJob(id, {.state = JobState::kFailed, .finished = kT0}).ok());
  ASSERT_TRUE(catalog->AddSnapshot(Snap("late1", id, kT0)).ok());
  EXPECT_EQ(Contradictions(*catalog), 0);
  EXPECT_EQ(catalog->GetJob(id)->consistency, Consistency::kCrashConsistent);
}

}  // namespace
}  // namespace qb::catalog
