#include "host-daemon/jobs/job_runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <thread>

#include "host-daemon/arrays/testing/fault_backend.h"
#include "host-daemon/jobs/job_budget.h"
#include "tests/daemon/test_agent.h"
#include "tests/daemon/test_env.h"

namespace qb::jobs {
namespace {

using namespace std::chrono_literals;
using arrays::testing::DeadlineBehaviour;
using arrays::testing::FakeFaultBackend;
using arrays::testing::FaultPlan;
using testing::AgentBehavior;
using testing::TestAgent;
using Clock = std::chrono::steady_clock;

constexpr const char* kAppConsistent = "application-consistent";

// A backend whose Snapshot throws (a bug in a backend) and records the deadline it was given.
class ProbeBackend final : public arrays::ArrayBackend {
 public:
  const std::string& name() const override { return name_; }
  arrays::Capabilities capabilities() const override { return {}; }
  Status Resolve(const arrays::LunSpec&) override { return Status::Ok(); }
  Result<arrays::PrepareReport> Prepare(const std::vector<arrays::LunSpec>&,
                                        std::chrono::milliseconds budget) override {
    prepare_budget = budget;
    return arrays::PrepareReport{};
  }
  Result<std::vector<arrays::SnapshotRecord>> Snapshot(const std::vector<arrays::LunSpec>&,
                                                       const std::string&,
                                                       Clock::time_point deadline) override {
    entered = Clock::now();
    given_deadline = deadline;
    throw std::runtime_error("probe backend exploded");
  }
  Result<std::vector<arrays::SnapshotRecord>> FindByKey(const std::vector<arrays::LunSpec>&,
                                                        const std::string&) override {
    return std::vector<arrays::SnapshotRecord>{};
  }
  Result<std::vector<arrays::SnapshotRecord>> List(const arrays::LunSpec&) override {
    return std::vector<arrays::SnapshotRecord>{};
  }
  Status Remove(const arrays::SnapshotRecord&) override { return Status::Ok(); }
  Result<std::string> Clone(const arrays::SnapshotRecord&, const std::string&) override {
    return Error(Code::kUnsupported, "no");
  }
  Status Rollback(const arrays::SnapshotRecord&) override {
    return Error(Code::kUnsupported, "no");
  }

  std::atomic<Clock::time_point> entered{}, given_deadline{};
  std::chrono::milliseconds prepare_budget{0};

 private:
  std::string name_ = "probe";
};

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fake = std::make_unique<FakeFaultBackend>("fake");
    fake_ = fake.get();
    ASSERT_TRUE(backends_.Add(std::move(fake)).ok());
    auto probe = std::make_unique<ProbeBackend>();
    probe_ = probe.get();
    ASSERT_TRUE(backends_.Add(std::move(probe)).ok());
    auto opened = catalog::Catalog::Open(":memory:");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    catalog_ = std::move(opened).value();
  }

  TestAgent& AddGuest(const std::string& vm, AgentBehavior behavior = AgentBehavior::kNormal,
                      const std::string& backend = "fake",
                      std::optional<proto::Inventory> inventory = std::nullopt) {
    testing::TestAgentOptions o;
    o.socket_path = dir_ / (vm + ".sock");
    o.behavior = behavior;
    o.inventory =
        inventory ? *inventory : TestAgent::SimpleInventory("/data", "sda", "600a0b80" + vm);
    o.slow_frozen_delay = 3s;
    o.writers = next_writers_;
    o.thaw_writers = next_thaw_writers_;
    agents_[vm] = std::make_unique<TestAgent>(o);
    link::LinkOptions lo;
    lo.guest_name = vm;
    lo.endpoint = *link::ParseEndpoint("unix:" + o.socket_path);
    lo.backoff_min = 10ms;
    lo.backoff_max = 100ms;
    auto guest_link = link::GuestLink::Create(io_.executor(), lo);
    guest_link->Start();
    Guest guest;
    guest.spec.name = vm;
    guest.spec.endpoint = "unix:" + o.socket_path;
    guest.spec.luns = {arrays::LunSpec{backend, "/luns/" + vm + ".raw", "600a0b80" + vm}};
    guest.link = guest_link;
    EXPECT_TRUE(registry_.Add(guest).ok());
    EXPECT_TRUE(io_.Run(guest_link->WaitConnected(Clock::now() + 10s)).ok());
    return *agents_[vm];
  }

  void StartRunner(JobRunnerOptions options = {}) {
    if (options.late_sweep_delay == limits::kRequestTimeout) options.late_sweep_delay = 50ms;
    runner_ = std::make_unique<JobRunner>(io_.executor(), pool_.get_executor(), backends_,
                                          *catalog_, registry_, options);
  }

  proto::JobReport Snap(std::vector<std::string> vms, std::uint32_t lease_ms = 0,
                        std::string group = "") {
    proto::SnapshotRequest request;
    request.vms = std::move(vms);
    request.group = std::move(group);
    request.lease_ms = lease_ms;
    return io_.Run(runner_->Snapshot(request));
  }

  std::vector<catalog::SnapshotRow> Rows(const std::string& vm) {
    auto rows = catalog_->ListSnapshots(vm);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? *rows : std::vector<catalog::SnapshotRow>{};
  }

  void TearDown() override {
    registry_.StopAll();
    io_.Stop();
    pool_.join();
    runner_.reset();
  }

  // Declared first so it is destroyed last: the links and timers below belong to its
  // io_context and must go before it does.
  testing::IoThread io_;
  testing::TempDir dir_;
  arrays::BackendSet backends_;
  FakeFaultBackend* fake_ = nullptr;
  ProbeBackend* probe_ = nullptr;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::map<std::string, std::unique_ptr<TestAgent>> agents_;
  GuestRegistry registry_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<JobRunner> runner_;
  std::vector<proto::WriterResult> next_writers_;       // what the next AddGuest's Frozen reports
  std::vector<proto::WriterResult> next_thaw_writers_;  // and its Thawed
};

TEST_F(JobRunnerTest, HappyPathIsApplicationConsistent) {
  auto& agent = AddGuest("vm1");
  StartRunner();
  auto report = Snap({"vm1"});
  EXPECT_EQ(report.error_code, 0) << report.error;
  EXPECT_EQ(report.state, "done");
  EXPECT_EQ(report.consistency, kAppConsistent);
  ASSERT_EQ(report.snapshots.size(), 1u);
  EXPECT_EQ(report.snapshots[0].consistency, kAppConsistent);
  EXPECT_EQ(report.not_covered, std::vector<std::string>{"vm1:/"});
  std::vector<std::string> phases;
  for (const auto& p : report.phases) phases.push_back(p.phase);
  EXPECT_EQ(phases, (std::vector<std::string>{"plan", "prepare", "freeze", "snapshot", "thaw",
                                              "verify", "record"}));
  EXPECT_FALSE(agent.frozen());
  ASSERT_TRUE(agent.last_thaw());
  EXPECT_TRUE(agent.last_thaw()->snapshot_ok);
  EXPECT_EQ(agent.last_freeze()->volumes, std::vector<std::string>{"/data"});
  auto rows = Rows("vm1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].consistency, catalog::Consistency::kApplicationConsistent);
  auto job = catalog_->GetJobByKey(report.job_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, catalog::JobState::kSucceeded);
}

// Invariant 1: thaw on every path.
TEST_F(JobRunnerTest, BackendFailureThawsAndRecordsNothing) {
  auto& agent = AddGuest("vm1");
  FaultPlan plan;
  plan.snapshot_error = Error(Code::kArrayError, "array on fire");
  fake_->SetFaults(plan);
  StartRunner();
  auto report = Snap({"vm1"});
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kArrayError)) << report.error;
  EXPECT_EQ(report.consistency, "none");
  EXPECT_FALSE(agent.frozen());
  ASSERT_TRUE(agent.last_thaw());
  EXPECT_FALSE(agent.last_thaw()->snapshot_ok);
  EXPECT_TRUE(Rows("vm1").empty());
  EXPECT_EQ(catalog_->GetJobByKey(report.job_id)->state, catalog::JobState::kFailed);
}

TEST_F(JobRunnerTest, BackendExceptionThawsAndReportsInternal) {
  auto& agent = AddGuest("vm1", AgentBehavior::kNormal, "probe");
  StartRunner();
  auto report = Snap({"vm1"});
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kInternal)) << report.error;
  EXPECT_FALSE(agent.frozen());
  EXPECT_EQ(agent.thaws(), 1);
  EXPECT_FALSE(agent.last_thaw()->snapshot_ok);
}

// Invariant 3: the lease and the array deadline derive from the named limits.
TEST_F(JobRunnerTest, ArrayDeadlineFallsInsideTheLease) {
  auto& agent = AddGuest("vm1", AgentBehavior::kNormal, "probe");
  StartRunner();
  auto before = Clock::now();
  Snap({"vm1"});
  ASSERT_TRUE(agent.last_freeze());
  EXPECT_EQ(agent.last_freeze()->lease_ms, static_cast<std::uint32_t>(kJobDefaultLease.count()));
  EXPECT_EQ(probe_->prepare_budget, kJobDefaultLease - limits::kArrayCallMargin);
  Clock::time_point deadline = probe_->given_deadline;
  // The deadline is at most lease - margin after the Freeze was sent (which is after `before`).
  EXPECT_LE(deadline, Clock::now() + kJobDefaultLease - limits::kArrayCallMargin);
  EXPECT_GE(deadline - before, std::chrono::milliseconds(0));
  EXPECT_LE(deadline - before, kJobDefaultLease - limits::kArrayCallMargin + 5s);
  EXPECT_LT(deadline, before + kJobDefaultLease + 5s);
  // A requested lease over the cap is capped.
  Snap({"vm1"}, 3600 * 1000);
  EXPECT_EQ(agent.last_freeze()->lease_ms, static_cast<std::uint32_t>(limits::kMaxLease.count()));
}

// Invariant 2: an array call slower than its deadline is never application-consistent; the
// guest is thawed before the call returns; the late snapshot is removed (default policy).
TEST_F(JobRunnerTest, ArraySlowerThanTheLeaseThawsFirstAndRemovesTheLateSnapshot) {
  auto& agent = AddGuest("vm1");
  FaultPlan plan;
  plan.deadline_behaviour = DeadlineBehaviour::kOverrunAndSucceed;
  fake_->SetFaults(plan);
  fake_->CloseGate();
  StartRunner();
  auto report = Snap({"vm1"}, 2000);  // array deadline = 2 s - kArrayCallMargin
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kTimeout)) << report.error;
  EXPECT_NE(report.consistency, kAppConsistent);
  EXPECT_TRUE(report.snapshots.empty());
  EXPECT_FALSE(agent.frozen());
  ASSERT_TRUE(agent.last_thaw());
  EXPECT_FALSE(agent.last_thaw()->snapshot_ok);
  EXPECT_TRUE(fake_->AllSnapshots().empty());  // the call has not landed yet: thaw came first
  fake_->OpenGate();
  EXPECT_TRUE(testing::Eventually([&] {
    return fake_->counts().remove >= 1 && fake_->AllSnapshots().empty() &&
           catalog_->GetJobByKey(report.job_id)->state != catalog::JobState::kRunning;
  }));
  EXPECT_TRUE(Rows("vm1").empty());
}

TEST_F(JobRunnerTest, LateSnapshotCanBeKeptButOnlyCrashConsistent) {
  AddGuest("vm1");
  FaultPlan plan;
  plan.deadline_behaviour = DeadlineBehaviour::kOverrunAndSucceed;
  fake_->SetFaults(plan);
  fake_->CloseGate();
  JobRunnerOptions options;
  options.late_policy = LatePolicy::kCrashConsistent;
  StartRunner(options);
  auto report = Snap({"vm1"}, 2000);
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kTimeout));
  EXPECT_EQ(catalog_->GetJobByKey(report.job_id)->state, catalog::JobState::kFailed);
  fake_->OpenGate();
  ASSERT_TRUE(testing::Eventually([&] { return Rows("vm1").size() == 1; }));
  auto rows = Rows("vm1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].consistency, catalog::Consistency::kCrashConsistent);
  EXPECT_EQ(fake_->AllSnapshots().size(), 1u);
}

TEST_F(JobRunnerTest, SnapshotThatLandsAfterABackendTimeoutIsFoundAndRemoved) {
  AddGuest("vm1");
  FaultPlan plan;
  plan.deadline_behaviour = DeadlineBehaviour::kTimeoutThenLandLater;
  plan.snapshot_delay = 1500ms;
  fake_->SetFaults(plan);
  JobRunnerOptions options;
  options.late_sweep_delay = 3s;  // the landing comes ~0.5 s after the thaw
  StartRunner(options);
  auto report = Snap({"vm1"}, 2000);
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kTimeout)) << report.error;
  // Recorded failed as soon as the job returns, not only after the late sweep.
  auto job = catalog_->GetJobByKey(report.job_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, catalog::JobState::kFailed);
  EXPECT_NE(job->error.find("array call late"), std::string::npos) << job->error;
  ASSERT_TRUE(fake_->WaitForLateLandings(10s));
  // The job's sweep finds it by key and removes it.
  EXPECT_TRUE(testing::Eventually([&] {
    return fake_->AllSnapshots().empty() &&
           catalog_->GetJobByKey(report.job_id)->state != catalog::JobState::kRunning;
  }));
  EXPECT_TRUE(Rows("vm1").empty());
}

// The job with a late array call is failed at once; a daemon that dies before its late sweep
// leaves the landed snapshot to the next daemon's Reconcile, which removes it.
TEST_F(JobRunnerTest, LateSnapshotOfAFailedJobIsReconciledAfterTheDaemonDied) {
  AddGuest("vm1");
  FaultPlan plan;
  plan.deadline_behaviour = DeadlineBehaviour::kTimeoutThenLandLater;
  plan.snapshot_delay = 1500ms;
  fake_->SetFaults(plan);
  JobRunnerOptions options;
  options.late_sweep_delay = 60s;  // this daemon "dies" long before its sweep
  StartRunner(options);
  auto report = Snap({"vm1"}, 2000);
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kTimeout)) << report.error;
  EXPECT_EQ(catalog_->GetJobByKey(report.job_id)->state, catalog::JobState::kFailed);
  ASSERT_TRUE(fake_->WaitForLateLandings(10s));
  EXPECT_EQ(fake_->AllSnapshots().size(), 1u);
  StartRunner();  // the restarted daemon
  ASSERT_TRUE(io_.Run(runner_->Reconcile()).ok());
  EXPECT_TRUE(fake_->AllSnapshots().empty());
  EXPECT_EQ(catalog_->GetJobByKey(report.job_id)->state, catalog::JobState::kFailed);
  EXPECT_TRUE(Rows("vm1").empty());
}

TEST_F(JobRunnerTest, FreezeNotHeldIsOnlyCrashConsistent) {
  AddGuest("vm1", AgentBehavior::kNotHeld);
  StartRunner();
  auto report = Snap({"vm1"});
  EXPECT_NE(report.consistency, kAppConsistent);
  EXPECT_EQ(report.consistency, "crash-consistent");
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kPartial)) << report.error;
  auto rows = Rows("vm1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].consistency, catalog::Consistency::kCrashConsistent);
}

// A group member that says its freeze held (it may lie: the host cannot look inside it) cannot
// lift the label of another member whose freeze did not hold: the group's label is the weakest
// member's, for every member's rows. (README, "What the label proves".)
TEST_F(JobRunnerTest, LyingGroupMemberCannotLiftAnotherVmsLabel) {
  AddGuest("vm1", AgentBehavior::kNotHeld);
  AddGuest("vm2");  // claims its freeze held the whole window
  JobRunnerOptions options;
  options.groups["db"] = {"vm1", "vm2"};
  StartRunner(options);
  auto report = Snap({}, 0, "db");
  EXPECT_EQ(report.consistency, "crash-consistent") << report.error;
  const auto vm1_rows = Rows("vm1");
  const auto vm2_rows = Rows("vm2");
  ASSERT_EQ(vm1_rows.size(), 1u);
  ASSERT_EQ(vm2_rows.size(), 1u);
  EXPECT_EQ(vm1_rows[0].consistency, catalog::Consistency::kCrashConsistent);
  EXPECT_EQ(vm2_rows[0].consistency, catalog::Consistency::kCrashConsistent);
}

TEST_F(JobRunnerTest, SecondJobOnABusyVmIsRefused) {
  AddGuest("vm1");
  fake_->CloseGate();
  StartRunner();
  proto::SnapshotRequest request;
  request.vms = {"vm1"};
  auto first = io_.Spawn(runner_->Snapshot(request));
  ASSERT_TRUE(fake_->WaitForSnapshotCalls(1, 10s));
  auto second = Snap({"vm1"});
  EXPECT_EQ(second.error_code, static_cast<int>(Code::kBusy));
  EXPECT_NE(second.error.find("busy"), std::string::npos);
  fake_->OpenGate();
  auto report = first.get();
  EXPECT_EQ(report.consistency, kAppConsistent) << report.error;
}

TEST_F(JobRunnerTest, GroupJobWithOneGuestFailingToFreezeThawsAll) {
  auto& good = AddGuest("vm1");
  auto& bad = AddGuest("vm2", AgentBehavior::kRefuseFreeze);
  JobRunnerOptions options;
  options.groups["db"] = {"vm1", "vm2"};
  StartRunner(options);
  auto report = Snap({}, 0, "db");
  EXPECT_NE(report.error_code, 0);
  EXPECT_EQ(report.consistency, "none");
  EXPECT_EQ(report.vms, (std::vector<std::string>{"vm1", "vm2"}));
  EXPECT_EQ(good.freezes(), 1);
  EXPECT_FALSE(good.frozen());
  ASSERT_TRUE(good.last_thaw());
  EXPECT_FALSE(good.last_thaw()->snapshot_ok);
  EXPECT_FALSE(bad.frozen());
  EXPECT_EQ(fake_->counts().snapshot, 0);
  EXPECT_TRUE(Rows("").empty());
}

TEST_F(JobRunnerTest, GroupJobTakesOneGroupSnapshot) {
  AddGuest("vm1");
  AddGuest("vm2");
  StartRunner();
  auto report = Snap({"vm1", "vm2"});
  EXPECT_EQ(report.consistency, kAppConsistent) << report.error;
  EXPECT_EQ(fake_->counts().snapshot, 1);
  EXPECT_EQ(report.snapshots.size(), 2u);
}

TEST_F(JobRunnerTest, FreezeNeverAnsweredIsStillThawed) {
  auto& agent = AddGuest("vm1", AgentBehavior::kSilentFreeze);
  StartRunner();
  auto report = Snap({"vm1"}, 2000);  // waits lease + kFreezeReplySlack
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kTimeout)) << report.error;
  EXPECT_EQ(agent.thaws(), 1);
  EXPECT_FALSE(agent.frozen());
  ASSERT_TRUE(agent.last_hold());
  EXPECT_EQ(fake_->counts().snapshot, 0);
}

TEST_F(JobRunnerTest, AgentDyingAfterFrozenIsNeverApplicationConsistent) {
  auto& agent = AddGuest("vm1", AgentBehavior::kDieAfterFrozen);
  StartRunner();
  auto report = Snap({"vm1"}, 2000);
  EXPECT_NE(report.consistency, kAppConsistent);
  EXPECT_NE(report.error_code, 0);
  // The agent's own lease (its watchdog) thaws it.
  EXPECT_TRUE(agent.WaitUntil([&] { return !agent.frozen(); }, 10s));
  for (const auto& row : Rows("vm1"))
    EXPECT_NE(row.consistency, catalog::Consistency::kApplicationConsistent);
}

// An agent stalled right after receiving Freeze (SIGSTOP): the Freeze times out, and the Thaw
// that follows waits only for what is left of the lease plus kThawMargin (the agent's own
// lease thaws it anyway), not a fresh request timeout.
TEST_F(JobRunnerTest, ThawAfterAFreezeTimeoutIsBoundedByTheLease) {
  auto& agent = AddGuest("vm1", AgentBehavior::kStallAfterFreeze);
  StartRunner();
  auto t0 = Clock::now();
  auto report = Snap({"vm1"}, 2000);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::printf("stalled agent, lease 2000 ms: job report after %lld ms\n",
              static_cast<long long>(took.count()));
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kTimeout)) << report.error;
  EXPECT_NE(report.consistency, kAppConsistent);
  EXPECT_EQ(agent.freezes(), 1);
  // Freeze: lease + kFreezeReplySlack; Thaw: nothing left of the lease + kThawMargin.
  EXPECT_LT(took, 2000ms + limits::kFreezeReplySlack + limits::kThawMargin + 1000ms);
  EXPECT_GE(took, 2000ms + limits::kFreezeReplySlack);
  EXPECT_TRUE(agent.WaitUntil([&] { return !agent.frozen(); }, 5s));  // its lease thawed it
  auto job = catalog_->GetJobByKey(report.job_id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, catalog::JobState::kFailed);
}

// The agent's socket closes while the daemon waits for Frozen (a stalled agent killed): the
// job reports at once with a "session ended" error instead of waiting out any deadline.
TEST_F(JobRunnerTest, AgentSessionEndingDuringTheFreezeEndsTheJobAtOnce) {
  auto& agent = AddGuest("vm1", AgentBehavior::kStallAfterFreeze);
  StartRunner();
  std::atomic<Clock::time_point> closed{};
  std::thread killer([&] {
    agent.WaitUntil([&] { return agent.freezes() == 1; }, 10s);
    std::this_thread::sleep_for(300ms);
    closed = Clock::now();
    agent.DropSessions();
  });
  auto report = Snap({"vm1"}, 8000);  // Freeze would wait 10 s, the Thaw 10 s more
  auto reported = Clock::now();
  killer.join();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(reported - closed.load());
  std::printf("agent socket closed during Freeze: job report %lld ms later\n",
              static_cast<long long>(took.count()));
  EXPECT_LT(took, 1000ms);
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kGuestUnreachable)) << report.error;
  EXPECT_NE(report.error.find("session ended"), std::string::npos) << report.error;
  EXPECT_NE(report.consistency, kAppConsistent);
}

// `quiescectl jobs` (ListJobs) shows what the job's own report showed: freeze window,
// snapshots with their labels, writers.
TEST_F(JobRunnerTest, ListJobsShowsWindowSnapshotsAndWritersFromTheCatalog) {
  proto::WriterResult hook;
  hook.name = "pg \"main\"";
  hook.ok = true;
  hook.state = "frozen\\ok";
  next_writers_ = {hook};
  AddGuest("vm1");
  StartRunner();
  auto report = Snap({"vm1"});
  ASSERT_EQ(report.error_code, 0) << report.error;
  ASSERT_GT(report.freeze_window_us, 0u);
  ASSERT_EQ(report.snapshots.size(), 1u);
  ASSERT_EQ(report.writers.size(), 1u);
  EXPECT_EQ(report.writers[0], "vm1: pg \"main\" [freeze]: frozen\\ok");
  ASSERT_EQ(report.writer_details.size(), 1u);
  EXPECT_EQ(report.writer_details[0].phase, proto::WriterPhase::kFreeze);
  auto jobs = io_.Run(runner_->ListJobs(10));
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  ASSERT_EQ(jobs->size(), 1u);
  const auto& listed = (*jobs)[0];
  EXPECT_EQ(listed.job_id, report.job_id);
  EXPECT_EQ(listed.consistency, kAppConsistent);
  EXPECT_EQ(listed.freeze_window_us, report.freeze_window_us);
  EXPECT_EQ(listed.snapshots, report.snapshots);
  EXPECT_EQ(listed.writers, report.writers);
  EXPECT_EQ(listed.writer_details, report.writer_details);
}

// Issue 12 item 9: an agent of before the fix repeats its freeze hook results in Thawed;
// each hook shows once per phase, with the phase, in the report and in `jobs`.
TEST_F(JobRunnerTest, FreezeHooksRepeatedInThawedShowOncePerPhase) {
  proto::WriterResult freeze;
  freeze.name = "10-db";
  freeze.ok = true;
  freeze.state = "exit 0";
  freeze.phase = "freeze";
  proto::WriterResult thaw = freeze;
  thaw.phase = "thaw";
  next_writers_ = {freeze};
  next_thaw_writers_ = {freeze, thaw};
  AddGuest("vm1");
  StartRunner();
  auto report = Snap({"vm1"});
  ASSERT_EQ(report.error_code, 0) << report.error;
  EXPECT_EQ(report.writers,
            (std::vector<std::string>{"vm1: 10-db [freeze]: exit 0", "vm1: 10-db [thaw]: exit 0"}));
  ASSERT_EQ(report.writer_details.size(), 2u);
  EXPECT_EQ(report.writer_details[0].phase, proto::WriterPhase::kFreeze);
  EXPECT_EQ(report.writer_details[1].phase, proto::WriterPhase::kThaw);
  auto jobs = io_.Run(runner_->ListJobs(10));
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  EXPECT_EQ((*jobs)[0].writer_details, report.writer_details);
}

TEST_F(JobRunnerTest, LyingAgentsFailTheJobAndAreThawed) {
  auto& agent = AddGuest("vm1", AgentBehavior::kWrongJobId);
  StartRunner();
  auto report = Snap({"vm1"});
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kProtocolError)) << report.error;
  EXPECT_EQ(agent.thaws(), 1);
  EXPECT_FALSE(agent.frozen());
  agent.SetBehavior(AgentBehavior::kExtraVolume);
  report = Snap({"vm1"});
  EXPECT_EQ(report.error_code, static_cast<int>(Code::kProtocolError)) << report.error;
  EXPECT_FALSE(agent.frozen());
  EXPECT_EQ(fake_->counts().snapshot, 0);
}

// Invariant 4: a guest claiming another VM's LUN in its inventory cannot get it snapshotted.
TEST_F(JobRunnerTest, GuestInventoryCannotAddAnotherVmsLun) {
  AddGuest("vm2");
  auto greedy = TestAgent::SimpleInventory("/data", "sda", "600a0b80vm1");
  greedy.disks.push_back(proto::Disk{"sdb", "600a0b80vm2", "", "", "", "scsi", 1});
  greedy.volumes.push_back(proto::Volume{"/stolen", "/dev/sdb1", "xfs", true, {"sdb"}, 1, {}});
  AddGuest("vm1", AgentBehavior::kNormal, "fake", greedy);
  StartRunner();
  auto report = Snap({"vm1"});
  EXPECT_EQ(report.consistency, kAppConsistent) << report.error;
  auto on_array = fake_->AllSnapshots();
  ASSERT_EQ(on_array.size(), 1u);
  EXPECT_EQ(on_array[0].lun, "/luns/vm1.raw");
  EXPECT_EQ(agents_["vm1"]->last_freeze()->volumes, std::vector<std::string>{"/data"});
  EXPECT_EQ(report.not_covered, (std::vector<std::string>{"vm1:/", "vm1:/stolen"}));
}

TEST_F(JobRunnerTest, SlowGuestDoesNotDelayAnotherGuestsJob) {
  auto& slow = AddGuest("slow", AgentBehavior::kSlowFrozen);
  AddGuest("fast");
  StartRunner();
  proto::SnapshotRequest request;
  request.vms = {"slow"};
  auto slow_job = io_.Spawn(runner_->Snapshot(request));
  ASSERT_TRUE(slow.WaitUntil([&] { return slow.freezes() == 1; }, 10s));
  auto fast = Snap({"fast"});
  EXPECT_EQ(fast.consistency, kAppConsistent) << fast.error;
  EXPECT_EQ(slow_job.wait_for(0s), std::future_status::timeout);
  auto slow_report = slow_job.get();
  EXPECT_EQ(slow_report.consistency, kAppConsistent) << slow_report.error;
}

TEST_F(JobRunnerTest, UnreachableOrUnknownGuests) {
  StartRunner();
  EXPECT_EQ(Snap({"nobody"}).error_code, static_cast<int>(Code::kNotFound));
  link::LinkOptions lo;
  lo.guest_name = "down";
  lo.endpoint = *link::ParseEndpoint("unix:" + (dir_ / "none.sock"));
  Guest guest;
  guest.spec.name = "down";
  guest.spec.luns = {arrays::LunSpec{"fake", "/luns/down.raw", "01"}};
  guest.link = link::GuestLink::Create(io_.executor(), lo);
  guest.link->Start();
  ASSERT_TRUE(registry_.Add(guest).ok());
  EXPECT_EQ(Snap({"down"}).error_code, static_cast<int>(Code::kGuestUnreachable));
}

TEST_F(JobRunnerTest, ShutdownThawsARunningJob) {
  auto& agent = AddGuest("vm1");
  fake_->CloseGate();
  StartRunner();
  proto::SnapshotRequest request;
  request.vms = {"vm1"};
  auto job = io_.Spawn(runner_->Snapshot(request));
  ASSERT_TRUE(fake_->WaitForSnapshotCalls(1, 10s));
  EXPECT_TRUE(agent.frozen());
  io_.Run(runner_->Shutdown());
  auto report = job.get();
  EXPECT_NE(report.consistency, kAppConsistent);
  EXPECT_FALSE(agent.frozen());
  EXPECT_FALSE(agent.last_thaw()->snapshot_ok);
  EXPECT_EQ(Snap({"vm1"}).error_code, static_cast<int>(Code::kCancelled));
  fake_->OpenGate();
}

// Invariant 5: an unfinished job (daemon killed) is reconciled, never application-consistent.
TEST_F(JobRunnerTest, ReconcileRecordsOrRemovesWhatAnUnfinishedJobLeft) {
  AddGuest("vm1");
  AddGuest("vm2");
  for (auto policy : {LatePolicy::kRemove, LatePolicy::kCrashConsistent}) {
    const std::string key = policy == LatePolicy::kRemove ? "jcrash_1" : "jcrash_2";
    const std::string vm = policy == LatePolicy::kRemove ? "vm1" : "vm2";
    catalog::JobRow row{key, {vm}, "", std::chrono::system_clock::now()};
    ASSERT_TRUE(catalog_->BeginJob(row).ok());
    std::vector<arrays::LunSpec> luns = {{"fake", "/luns/" + vm + ".raw", ""}};
    ASSERT_TRUE(fake_->Snapshot(luns, key, Clock::now() + 10s).ok());
    JobRunnerOptions options;
    options.late_policy = policy;
    StartRunner(options);
    ASSERT_TRUE(io_.Run(runner_->Reconcile()).ok());
    auto job = catalog_->GetJobByKey(key);
    EXPECT_EQ(job->state, catalog::JobState::kReconciled);
    auto rows = Rows(vm);
    if (policy == LatePolicy::kRemove) {
      EXPECT_TRUE(rows.empty());
      EXPECT_TRUE(io_.Run(runner_->ListSnapshots(vm))->empty());
    } else {
      ASSERT_EQ(rows.size(), 1u);
      EXPECT_EQ(rows[0].consistency, catalog::Consistency::kCrashConsistent);
    }
  }
  EXPECT_EQ(fake_->AllSnapshots().size(), 1u);
}

// Issue 12, defect 1: the late policy is for snapshots found WITHOUT a row; a snapshot the
// catalog already holds is never removed by reconcile (with the default policy `remove`).
TEST_F(JobRunnerTest, ReconcileNeverRemovesASnapshotThatHasARow) {
  AddGuest("vm1");
  const std::string key = "jrowed_1";
  catalog::JobRow row{key, {"vm1"}, "", std::chrono::system_clock::now()};
  auto id = catalog_->BeginJob(row);
  ASSERT_TRUE(id.ok());
  std::vector<arrays::LunSpec> luns = {{"fake", "/luns/vm1.raw", ""}};
  auto made = fake_->Snapshot(luns, key, Clock::now() + 10s);
  ASSERT_TRUE(made.ok());
  ASSERT_TRUE(catalog_
                  ->AddSnapshot({key + ".vm1.0", "vm1", *id, "fake", "/luns/vm1.raw",
                                 made->front().array_name, catalog::Consistency::kCrashConsistent,
                                 std::chrono::system_clock::now()})
                  .ok());
  StartRunner();  // late_policy remove
  ASSERT_TRUE(io_.Run(runner_->Reconcile()).ok());
  EXPECT_EQ(fake_->AllSnapshots().size(), 1u);
  ASSERT_EQ(Rows("vm1").size(), 1u);
  auto job = catalog_->GetJobByKey(key);
  EXPECT_EQ(job->state, catalog::JobState::kReconciled);
  EXPECT_EQ(job->consistency, catalog::Consistency::kCrashConsistent);
}

// Issue 12, defect 4: reconcile looks where the job journaled its LUNs, not in today's
// registry (here the job's VM is not configured any more): nothing is left orphaned.
TEST_F(JobRunnerTest, ReconcileUsesTheLunsTheJobJournaled) {
  AddGuest("vm1");
  const std::string key = "jgone_1";
  catalog::JobRow row{key, {"gone"}, "", std::chrono::system_clock::now(), {}};
  row.luns = {{"gone", 0, "fake", "/luns/gone.raw", ""}};
  ASSERT_TRUE(catalog_->BeginJob(row).ok());
  std::vector<arrays::LunSpec> luns = {{"fake", "/luns/gone.raw", ""}};
  ASSERT_TRUE(fake_->Snapshot(luns, key, Clock::now() + 10s).ok());
  StartRunner();  // late_policy remove
  ASSERT_TRUE(io_.Run(runner_->Reconcile()).ok());
  EXPECT_TRUE(fake_->AllSnapshots().empty());
  EXPECT_EQ(catalog_->GetJobByKey(key)->state, catalog::JobState::kReconciled);
}

// Issue 12, defect 3: a removal journaled (row in state deleting: a delete, retention, or a
// failed group's member) and cut short by a kill is finished by reconcile, whatever the late
// policy (a failed group's member is not kept crash-consistent).
TEST_F(JobRunnerTest, ReconcileFinishesJournaledRemovals) {
  AddGuest("vm1");
  const std::string key = "jgroup_1";
  catalog::JobRow row{key, {"vm1"}, "", std::chrono::system_clock::now(), {}};
  row.luns = {{"vm1", 0, "fake", "/luns/vm1.raw", ""}};
  auto id = catalog_->BeginJob(row);
  ASSERT_TRUE(id.ok());
  std::vector<arrays::LunSpec> luns = {{"fake", "/luns/vm1.raw", ""}};
  auto made = fake_->Snapshot(luns, key, Clock::now() + 10s);
  ASSERT_TRUE(made.ok());
  catalog::SnapshotRow doomed{key + ".vm1.0",
                              "vm1",
                              *id,
                              "fake",
                              "/luns/vm1.raw",
                              made->front().array_name,
                              catalog::Consistency::kCrashConsistent,
                              std::chrono::system_clock::now(),
                              catalog::SnapshotState::kDeleting};
  ASSERT_TRUE(catalog_->AddSnapshot(doomed).ok());
  JobRunnerOptions options;
  options.late_policy = LatePolicy::kCrashConsistent;
  StartRunner(options);
  ASSERT_TRUE(io_.Run(runner_->Reconcile()).ok());
  EXPECT_TRUE(fake_->AllSnapshots().empty());
  EXPECT_TRUE(catalog_->PendingDeletions()->empty());
  EXPECT_TRUE(catalog_->ListSnapshotsOfJob(*id)->empty());
  auto job = catalog_->GetJobByKey(key);
  EXPECT_EQ(job->state, catalog::JobState::kReconciled);
  EXPECT_FALSE(job->consistency.has_value());
}

TEST_F(JobRunnerTest, RetentionKeepsTheLastN) {
  AddGuest("vm1");
  JobRunnerOptions options;
  options.retention["vm1"] = RetentionRule{2, std::nullopt};
  StartRunner(options);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Snap({"vm1"}).consistency, kAppConsistent);
  EXPECT_EQ(Rows("vm1").size(), 2u);
  EXPECT_EQ(fake_->AllSnapshots().size(), 2u);
}

TEST_F(JobRunnerTest, DeleteExposeRollbackAndEmergencyThaw) {
  auto& agent = AddGuest("vm1");
  StartRunner();
  auto report = Snap({"vm1"});
  ASSERT_EQ(report.snapshots.size(), 1u);
  auto id = report.snapshots[0].snapshot_id;
  auto exposed = io_.Run(runner_->Expose(id, "clone1"));
  EXPECT_TRUE(exposed.ok()) << exposed.status().ToString();
  // Rollback refused while the VM runs (its agent answers).
  EXPECT_EQ(io_.Run(runner_->Rollback("vm1", id)).code(), Code::kPermissionDenied);
  // Emergency thaw of a guest a dead daemon left frozen.
  agent.SetBehavior(AgentBehavior::kNormal);
  auto link = registry_.Find("vm1")->link;
  proto::Freeze freeze{"jorphan", {"/data"}, false, proto::FreezeMode::kFsfreeze, 5000};
  ASSERT_TRUE(io_.Run(link->Freeze(freeze, Clock::now() + 5s)).ok());
  auto thawed = io_.Run(runner_->Thaw("vm1"));
  ASSERT_TRUE(thawed.ok()) << thawed.status().ToString();
  EXPECT_EQ(*thawed, "thawed job jorphan");
  EXPECT_FALSE(agent.frozen());
  EXPECT_TRUE(io_.Run(runner_->DeleteSnapshot(id)).ok());
  EXPECT_TRUE(Rows("vm1").empty());
  EXPECT_EQ(io_.Run(runner_->DeleteSnapshot(id)).code(), Code::kNotFound);
  auto jobs = io_.Run(runner_->ListJobs(10));
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->size(), 1u);
}

}  // namespace
}  // namespace qb::jobs
