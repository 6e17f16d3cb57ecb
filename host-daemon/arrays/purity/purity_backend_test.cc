#include "host-daemon/arrays/purity/purity_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "host-daemon/arrays/purity/purity_factory.h"
#include "host-daemon/arrays/purity/purity_names.h"
#include "host-daemon/arrays/purity/purity_test_support.h"

namespace qb::arrays::purity {
namespace {

using namespace std::chrono_literals;
using qb::testing::FakeArrayFault;
using Clock = std::chrono::steady_clock;

constexpr auto kTestDeadline = 20s;
constexpr auto kBudget = std::chrono::milliseconds(limits::kDefaultLease);

class PurityBackendTest : public ::testing::Test {
 protected:
  PurityBackendTest() {
    for (int i = 0; i < 4; ++i) {
      const std::string name = "vm1-disk" + std::to_string(i);
      serials_.push_back(sim_.array.AddVolume(name));
      luns_.push_back(LunSpec{"purity", name, ""});
    }
    options_.rest = sim_.Options();
    backend_ = std::make_unique<PurityBackend>(options_, kTestApiToken);
  }

  std::vector<LunSpec> Luns(std::size_t n) const { return {luns_.begin(), luns_.begin() + n}; }
  uint64_t Sent() const { return backend_->requests_sent(); }
  int Count(const std::string& what) const {
    const auto r = sim_.array.Requests();
    return static_cast<int>(std::count(r.begin(), r.end(), what));
  }

  SimulatedArray sim_;
  std::vector<std::string> serials_;
  std::vector<LunSpec> luns_;
  PurityBackendOptions options_;
  std::unique_ptr<PurityBackend> backend_;
};

TEST_F(PurityBackendTest, ResolvesByNameWwnAndByIdPath) {
  EXPECT_TRUE(backend_->Resolve(luns_[0]).ok());
  EXPECT_TRUE(backend_->Resolve({"purity", "", NaaOfSerial(serials_[1])}).ok());
  EXPECT_TRUE(
      backend_
          ->Resolve({"purity", "/dev/disk/by-id/dm-uuid-mpath-3" + NaaOfSerial(serials_[2]), ""})
          .ok());
  EXPECT_TRUE(backend_->Resolve({"purity", "vm1-disk3", NaaOfSerial(serials_[3])}).ok());
}

TEST_F(PurityBackendTest, ResolveRejectsWrongOrForeignLuns) {
  EXPECT_EQ(backend_->Resolve({"purity", "nope", ""}).code(), Code::kNotFound);
  EXPECT_EQ(backend_->Resolve({"purity", "", NaaOfSerial("000000000000000000000000")}).code(),
            Code::kNotFound);
  // Name and WWN of two different volumes: the wrong LUN must never be snapshotted.
  EXPECT_EQ(backend_->Resolve({"purity", "vm1-disk0", NaaOfSerial(serials_[1])}).code(),
            Code::kConflict);
  EXPECT_EQ(backend_->Resolve({"purity", "/dev/sda", ""}).code(), Code::kInvalidArgument);
  EXPECT_EQ(backend_->Resolve({"purity", "", "600a0980383030523424457a4a695266"}).code(),
            Code::kInvalidArgument);
}

TEST_F(PurityBackendTest, PrepareOneLunDryRunsTheVolumeSnapshot) {
  auto report = backend_->Prepare(Luns(1), kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(Count("POST /volume-snapshots/test"), 1);
  EXPECT_EQ(Count("POST /volume-snapshots"), 0);
  EXPECT_TRUE(sim_.array.VolumeSnapshotNames(true).empty()) << "a dry run created something";
  EXPECT_GE(report->projected_cut, 1ms);
}

TEST_F(PurityBackendTest, PrepareMakesTheGroupHoldExactlyTheVmVolumes) {
  auto group_luns = Luns(3);
  // A stale member from an earlier LUN set must be removed, a missing one added.
  std::vector<std::string> names{"vm1-disk0", "vm1-disk1", "vm1-disk2"};
  const std::string group = ProtectionGroupNameFor(names);
  ASSERT_TRUE(backend_->Prepare(group_luns, kBudget).ok());
  auto members = sim_.array.ProtectionGroupMembers(group);
  std::sort(members.begin(), members.end());
  EXPECT_EQ(members, names);
  EXPECT_EQ(Count("POST /protection-group-snapshots/test"), 1);
  // Prepare again: nothing to change, no membership writes.
  sim_.array.ClearRequests();
  ASSERT_TRUE(backend_->Prepare(group_luns, kBudget).ok());
  EXPECT_EQ(Count("POST /protection-groups/volumes"), 0);
  EXPECT_EQ(Count("DELETE /protection-groups/volumes"), 0);
}

TEST_F(PurityBackendTest, PrepareRefusesABudgetTheCutCannotFit) {
  sim_.array.Inject({FakeArrayFault::Kind::kSlowAnswer, "POST", "/volume-snapshots/test", 200,
                     std::nullopt, "", 300ms, 1});
  auto report = backend_->Prepare(Luns(1), 100ms);
  EXPECT_EQ(report.status().code(), Code::kTimeout) << report.status().ToString();
}

TEST_F(PurityBackendTest, PrepareWarnsWhenTheArrayHasNoTestEndpoint) {
  sim_.array.Inject({FakeArrayFault::Kind::kStatus, "POST", "/volume-snapshots/test", 404,
                     std::nullopt, "Not found.", 0ms, 1});
  auto report = backend_->Prepare(Luns(1), kBudget);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_FALSE(report->warnings.empty());
  EXPECT_NE(report->warnings.back().find("/test"), std::string::npos);
}

TEST_F(PurityBackendTest, OneLunSnapshotIsOneRequestInsideTheFreeze) {
  ASSERT_TRUE(backend_->Prepare(Luns(1), kBudget).ok());
  const uint64_t before = Sent();
  auto records = backend_->Snapshot(Luns(1), "job1", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(Sent() - before, 1u);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].array_name, "vm1-disk0.qb-job1");
  EXPECT_EQ((*records)[0].job_key, "job1");
  EXPECT_EQ((*records)[0].lun, "vm1-disk0");
  EXPECT_TRUE(sim_.array.HasVolumeSnapshot("vm1-disk0.qb-job1"));
}

TEST_F(PurityBackendTest, FourLunSnapshotIsOneAtomicGroupRequest) {
  ASSERT_TRUE(backend_->Prepare(Luns(4), kBudget).ok());
  const uint64_t before = Sent();
  auto records = backend_->Snapshot(Luns(4), "job4", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(Sent() - before, 1u);
  ASSERT_EQ(records->size(), 4u);
  const std::string group =
      ProtectionGroupNameFor({"vm1-disk0", "vm1-disk1", "vm1-disk2", "vm1-disk3"});
  EXPECT_TRUE(sim_.array.HasProtectionGroupSnapshot(group + ".qb-job4"));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ((*records)[i].array_name, group + ".qb-job4.vm1-disk" + std::to_string(i));
    EXPECT_TRUE(sim_.array.HasVolumeSnapshot((*records)[i].array_name));
  }
}

TEST_F(PurityBackendTest, UnpreparedSnapshotStillWorksAtAHigherCost) {
  const uint64_t before = Sent();
  auto records = backend_->Snapshot(Luns(4), "cold", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  // version + login + 4 resolves + group get/create/members/add + snapshot.
  EXPECT_GT(Sent() - before, 1u);
  std::cout << "[ figures  ] unprepared 4-LUN Snapshot(): " << Sent() - before << " requests\n";
}

TEST_F(PurityBackendTest, ReusedJobKeyIsAConflictNotAnOverwrite) {
  ASSERT_TRUE(backend_->Snapshot(Luns(1), "dup", Clock::now() + kTestDeadline).ok());
  auto again = backend_->Snapshot(Luns(1), "dup", Clock::now() + kTestDeadline);
  EXPECT_EQ(again.status().code(), Code::kConflict) << again.status().ToString();
}

TEST_F(PurityBackendTest, InvalidJobKeyIsRefusedBeforeAnyRequest) {
  const uint64_t before = Sent();
  EXPECT_EQ(backend_->Snapshot(Luns(1), "bad-key", Clock::now() + kTestDeadline).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Sent(), before);
}

TEST_F(PurityBackendTest, LostAnswerIsFoundByNameNotCreatedTwice) {
  ASSERT_TRUE(backend_->Prepare(Luns(1), kBudget).ok());
  sim_.array.Inject({FakeArrayFault::Kind::kDropAnswer, "POST", "/volume-snapshots", 200,
                     std::nullopt, "", 0ms, 1});
  auto records = backend_->Snapshot(Luns(1), "lost", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(Count("POST /volume-snapshots"), 1) << "the create was re-sent blindly";
  EXPECT_EQ(Count("GET /volume-snapshots"), 1);
  EXPECT_TRUE(sim_.array.HasVolumeSnapshot("vm1-disk0.qb-lost"));
}

TEST_F(PurityBackendTest, LostGroupAnswerIsFoundByName) {
  ASSERT_TRUE(backend_->Prepare(Luns(2), kBudget).ok());
  sim_.array.Inject({FakeArrayFault::Kind::kDropAnswer, "POST", "/protection-group-snapshots", 200,
                     std::nullopt, "", 0ms, 1});
  auto records = backend_->Snapshot(Luns(2), "lostg", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(records->size(), 2u);
  EXPECT_EQ(Count("POST /protection-group-snapshots"), 1);
}

TEST_F(PurityBackendTest, BusyArrayIsRetriedAfterALookupWhileRetryAfterFits) {
  ASSERT_TRUE(backend_->Prepare(Luns(1), kBudget).ok());
  sim_.array.Inject({FakeArrayFault::Kind::kStatus, "POST", "/volume-snapshots", 503, 0,
                     "Server is busy", 0ms, 1});
  auto records = backend_->Snapshot(Luns(1), "busy", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  const auto r = sim_.array.Requests();
  // create (503) -> look up (absent) -> create again.
  const std::vector<std::string> tail(r.end() - 3, r.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"POST /volume-snapshots", "GET /volume-snapshots",
                                            "POST /volume-snapshots"}));
}

TEST_F(PurityBackendTest, BusyArrayWithRetryAfterPastTheDeadlineFailsInTime) {
  ASSERT_TRUE(backend_->Prepare(Luns(1), kBudget).ok());
  sim_.array.Inject({FakeArrayFault::Kind::kStatus, "POST", "/volume-snapshots", 429, 3600,
                     "Too many requests", 0ms, 1});
  auto records = backend_->Snapshot(Luns(1), "late", Clock::now() + kTestDeadline);
  EXPECT_EQ(records.status().code(), Code::kBusy) << records.status().ToString();
  EXPECT_FALSE(sim_.array.HasVolumeSnapshot("vm1-disk0.qb-late"));
}

TEST_F(PurityBackendTest, SlowCreatePastTheDeadlineIsATimeoutAndFoundLater) {
  ASSERT_TRUE(backend_->Prepare(Luns(1), kBudget).ok());
  sim_.array.Inject({FakeArrayFault::Kind::kSlowAnswer, "POST", "/volume-snapshots", 200,
                     std::nullopt, "", 2s, 1});
  auto records = backend_->Snapshot(Luns(1), "slow", Clock::now() + 300ms);
  EXPECT_EQ(records.status().code(), Code::kTimeout) << records.status().ToString();
  // The snapshot landed on the array anyway: the job layer finds it by key.
  auto found = backend_->FindByKey(Luns(1), "slow");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].array_name, "vm1-disk0.qb-slow");
}

TEST_F(PurityBackendTest, ExpiredSessionInsideTheFreezeCostsOneLogin) {
  ASSERT_TRUE(backend_->Prepare(Luns(1), kBudget).ok());
  sim_.array.ExpireSessions();
  const uint64_t before = Sent();
  auto records = backend_->Snapshot(Luns(1), "relog", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  EXPECT_EQ(Sent() - before, 3u);  // 401, login, create
}

TEST_F(PurityBackendTest, FindAndListAfterARestart) {
  ASSERT_TRUE(backend_->Snapshot(Luns(1), "a1", Clock::now() + kTestDeadline).ok());
  // Creation times are milliseconds; make sure the two differ so "oldest first" is defined.
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(backend_->Snapshot(Luns(2), "B_2.x", Clock::now() + kTestDeadline).ok());
  // A foreign snapshot (an admin's) is never listed.
  {
    RestClient admin(sim_.Options(), kTestApiToken);
    auto made = admin.Call({HttpMethod::kPost,
                            "/volume-snapshots",
                            {{"source_names", "vm1-disk0"}},
                            boost::json::object{{"suffix", "daily-1"}},
                            false},
                           Clock::now() + kTestDeadline);
    ASSERT_TRUE(made.ok() && made->ok());
  }
  PurityBackend restarted(options_, kTestApiToken);
  auto found = restarted.FindByKey(Luns(2), "B_2.x");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->size(), 2u);
  auto none = restarted.FindByKey(Luns(2), "never");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto listed = restarted.List(luns_[0]);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].job_key, "a1");
  EXPECT_EQ((*listed)[1].job_key, "B_2.x");
}

TEST_F(PurityBackendTest, RemoveDestroysAndIsIdempotent) {
  auto records = backend_->Snapshot(Luns(1), "rm", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok());
  ASSERT_TRUE(backend_->Remove((*records)[0]).ok());
  EXPECT_FALSE(sim_.array.HasVolumeSnapshot("vm1-disk0.qb-rm"));
  EXPECT_TRUE(sim_.array.HasVolumeSnapshot("vm1-disk0.qb-rm", true)) << "destroy, not eradicate";
  EXPECT_TRUE(backend_->Remove((*records)[0]).ok());
  auto found = backend_->FindByKey(Luns(1), "rm");
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->empty());
  SnapshotRecord ghost = (*records)[0];
  ghost.array_name = "vm1-disk0.qb-ghost";
  EXPECT_TRUE(backend_->Remove(ghost).ok());
}

TEST_F(PurityBackendTest, RemoveWithEradicateFreesTheName) {
  options_.eradicate_on_remove = true;
  PurityBackend eradicating(options_, kTestApiToken);
  auto records = eradicating.Snapshot(Luns(3), "er", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  for (const auto& record : *records) ASSERT_TRUE(eradicating.Remove(record).ok());
  for (const auto& record : *records) {
    EXPECT_FALSE(sim_.array.HasVolumeSnapshot(record.array_name, true));
  }
}

TEST_F(PurityBackendTest, CloneMakesANewVolumeAndRefusesATakenName) {
  auto records = backend_->Snapshot(Luns(2), "cl", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok());
  auto clone = backend_->Clone((*records)[1], "backup-disk1");
  ASSERT_TRUE(clone.ok()) << clone.status().ToString();
  EXPECT_EQ(*clone, "backup-disk1");
  EXPECT_EQ(sim_.array.VolumeSource("backup-disk1"), (*records)[1].array_name);
  EXPECT_EQ(backend_->Clone((*records)[1], "backup-disk1").status().code(), Code::kConflict);
  EXPECT_EQ(backend_->Clone((*records)[1], "bad/name").status().code(), Code::kInvalidArgument);
}

TEST_F(PurityBackendTest, RollbackOverwritesTheLunFromTheSnapshot) {
  auto records = backend_->Snapshot(Luns(1), "rb", Clock::now() + kTestDeadline);
  ASSERT_TRUE(records.ok());
  ASSERT_TRUE(backend_->Rollback((*records)[0]).ok());
  EXPECT_EQ(sim_.array.VolumeSource("vm1-disk0"), "vm1-disk0.qb-rb");
  SnapshotRecord gone = (*records)[0];
  gone.array_name = "vm1-disk0.qb-none";
  EXPECT_EQ(backend_->Rollback(gone).code(), Code::kNotFound);
}

TEST_F(PurityBackendTest, DeadlineAlreadyPassedCreatesNothing) {
  ASSERT_TRUE(backend_->Prepare(Luns(2), kBudget).ok());
  const uint64_t before = Sent();
  auto records = backend_->Snapshot(Luns(2), "past", Clock::now() - 1ms);
  EXPECT_EQ(records.status().code(), Code::kTimeout) << records.status().ToString();
  EXPECT_EQ(Sent(), before);
}

TEST_F(PurityBackendTest, ConcurrentJobsOnDifferentLunsAllLand) {
  // Worker threads of the daemon call one backend at once (calls are serialised inside).
  std::vector<std::thread> workers;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&, i] {
      results[i] =
          backend_->Snapshot({luns_[i]}, "par" + std::to_string(i), Clock::now() + kTestDeadline)
              .status();
    });
  }
  for (auto& w : workers) w.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(results[i].ok()) << results[i].ToString();
    EXPECT_TRUE(sim_.array.HasVolumeSnapshot("vm1-disk" + std::to_string(i) + ".qb-par" +
                                             std::to_string(i)));
  }
}

TEST_F(PurityBackendTest, FactoryReadsKeysAndRefusesLooseTokenFiles) {
  const std::string token = sim_.WriteFile("token", kTestApiToken, 0600);
  std::map<std::string, std::string> settings{{"host", "127.0.0.1"},
                                              {"port", std::to_string(sim_.array.port())},
                                              {"ca_file", sim_.certificate.cert_file()},
                                              {"api_token_file", token},
                                              {"eradicate_on_remove", "true"}};
  auto backend = CreatePurityBackend("fa1", settings);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->name(), "fa1");
  EXPECT_TRUE((*backend)->Resolve(luns_[0]).ok());

  auto typo = settings;
  typo["hots"] = "x";
  EXPECT_EQ(CreatePurityBackend("fa1", typo).status().code(), Code::kInvalidArgument);
  auto loose = settings;
  loose["api_token_file"] = sim_.WriteFile("loose", kTestApiToken, 0644);
  EXPECT_EQ(CreatePurityBackend("fa1", loose).status().code(), Code::kPermissionDenied);
  auto both = settings;
  both["api_token_credential"] = "purity";
  EXPECT_EQ(CreatePurityBackend("fa1", both).status().code(), Code::kInvalidArgument);
  auto bad_port = settings;
  bad_port["port"] = "70000";
  EXPECT_EQ(CreatePurityBackend("fa1", bad_port).status().code(), Code::kInvalidArgument);
  auto bad_bool = settings;
  bad_bool["insecure"] = "yes";
  EXPECT_EQ(CreatePurityBackend("fa1", bad_bool).status().code(), Code::kInvalidArgument);
}

TEST_F(PurityBackendTest, FreezeWindowFigures) {
  // The cost the daemon pays inside the freeze, printed for the report.
  for (std::size_t n : {1u, 4u}) {
    ASSERT_TRUE(backend_->Prepare(Luns(n), kBudget).ok());
    const uint64_t before = Sent();
    const auto started = Clock::now();
    auto records =
        backend_->Snapshot(Luns(n), "fig" + std::to_string(n), Clock::now() + kTestDeadline);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
    ASSERT_TRUE(records.ok()) << records.status().ToString();
    EXPECT_EQ(Sent() - before, 1u);
    std::cout << "[ figures  ] " << n << " LUN(s): " << Sent() - before
              << " REST request(s) inside Snapshot(), " << took.count()
              << " us against the simulator\n";
    // Median of 20 more cuts (figures only; nothing asserted about time).
    std::vector<int64_t> samples;
    for (int i = 0; i < 20; ++i) {
      const auto t0 = Clock::now();
      auto more = backend_->Snapshot(Luns(n), "fig" + std::to_string(n) + "x" + std::to_string(i),
                                     Clock::now() + kTestDeadline);
      samples.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
      ASSERT_TRUE(more.ok()) << more.status().ToString();
    }
    std::sort(samples.begin(), samples.end());
    std::cout << "[ figures  ] " << n << " LUN(s): median " << samples[10] << " us, max "
              << samples.back() << " us over 20 Snapshot() calls\n";
  }
}

}  // namespace
}  // namespace qb::arrays::purity
