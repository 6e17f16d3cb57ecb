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
  ASSERT_TRUE(catalog->AddSnapshot(Snap("s1", id, kT0)).ok());
  ASSERT_TRUE(catalog->AddSnapshot(Snap("s2", id, kT0)).ok());
  EXPECT_EQ(catalog->AddSnapshot(Snap("s2", id, kT0)).code(), Code::kConflict);
  EXPECT_EQ(catalog->AddSnapshot(Snap("s3", id + 7, kT0)).code(), Code::kNotFound);

  EXPECT_EQ(catalog->SetConsistency("s1", Consistency::kApplicationConsistent).code(),
            Code::kPermissionDenied);
  // The job cannot claim application-consistent before its rows were promoted.
  EXPECT_EQ(catalog
                ->FinishJob(id, {.state = JobState::kSucceeded,
                                 .consistency = Consistency::kApplicationConsistent,
                                 .finished = kT0})
                .code(),
            Code::kPermissionDenied);
  EXPECT_EQ(catalog->MarkJobApplicationConsistent(id, {true, false}).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(catalog->MarkJobApplicationConsistent(id, {false, true}).status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(catalog->GetSnapshot("s1")->consistency, Consistency::kCrashConsistent);

  auto promoted = catalog->MarkJobApplicationConsistent(id, {true, true});
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_EQ(*promoted, 2);
  EXPECT_EQ(catalog->GetSnapshot("s2")->consistency, Consistency::kApplicationConsistent);
  ASSERT_TRUE(catalog
                  ->FinishJob(id, {.state = JobState::kSucceeded,
                                   .consistency = Consistency::kApplicationConsistent,
                                   .finished = kT0})
                  .ok());
  // Finished jobs can never be promoted again, even with evidence.
  EXPECT_EQ(catalog->MarkJobApplicationConsistent(id, {true, true}).status().code(),
            Code::kConflict);
  // A downgrade is allowed.
  ASSERT_TRUE(catalog->SetConsistency("s1", Consistency::kCrashConsistent).ok());
  EXPECT_EQ(catalog->GetSnapshot("s1")->consistency, Consistency::kCrashConsistent);
  EXPECT_EQ(catalog->SetConsistency("nope", Consistency::kCrashConsistent).code(), Code::kNotFound);
}

TEST(CatalogTest, ReconciledJobCannotBePromoted) {
  auto catalog = OpenMemory();
  const int64_t id = Begin(*catalog, "job1", kT0);
  ASSERT_TRUE(catalog->AddSnapshot(Snap("s1", id, kT0)).ok());
  ASSERT_TRUE(catalog
                  ->FinishJob(id, {.state = JobState::kReconciled,
                                   .consistency = Consistency::kCrashConsistent,
                                   .finished = kT0})
                  .ok());
  EXPECT_EQ(catalog->MarkJobApplicationConsistent(id, {true, true}).status().code(),
            Code::kConflict);
  const int64_t empty = Begin(*catalog, "job2", kT0);
  EXPECT_EQ(catalog->MarkJobApplicationConsistent(empty, {true, true}).status().code(),
            Code::kInvalidArgument);
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
    // A version-1 file: the tables exist, the v2 indexes do not.
    auto catalog = Catalog::Open(old_path);
    ASSERT_TRUE(catalog.ok());
    Begin(**catalog, "old", kT0);
  }
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(old_path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "DROP INDEX snapshots_by_vm; DROP INDEX snapshots_by_job; "
                           "DROP INDEX jobs_by_state; PRAGMA user_version = 1",
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
