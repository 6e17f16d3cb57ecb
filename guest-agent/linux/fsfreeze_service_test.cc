// FsFreezeService on real loop-mounted ext4 and XFS (root only): the freeze job, the lease,
// hooks, the verdict, crash recovery.
#include "guest-agent/linux/fsfreeze_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <fstream>
#include <sstream>

#include "common/logging.h"
#include "guest-agent/linux/fs_freezer.h"
#include "guest-agent/linux/testing/loop_fs.h"
#include "guest-agent/linux/testing/run_coro.h"

namespace qb::agent {
namespace {

using namespace std::chrono_literals;
using testing::BackgroundWriter;
using testing::RunCoro;
using testing::RunUntil;
using testing::TempDir;
using testing::TestMount;

constexpr auto kWriteCompletes = 20s;
constexpr auto kStaysBlocked = 500ms;
constexpr auto kGenerous = 30s;

class FsFreezeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
    ::mkdir((dir_.path() + "/hooks").c_str(), 0755);
    options_.run_dir = dir_.path() + "/run";
    options_.hooks_dir = dir_.path() + "/hooks";
    options_.hook_timeout = 10s;
    options_.lease_cap = limits::kMaxLease;
  }

  FsFreezeService& Service() {
    if (!service_) service_ = std::make_unique<FsFreezeService>(io_.get_executor(), options_);
    return *service_;
  }

  std::unique_ptr<TestMount> Mount(const std::string& name, const std::string& type) {
    auto m = std::make_unique<TestMount>(dir_.path(), name, type);
    EXPECT_TRUE(m->ok()) << m->error();
    return m;
  }

  proto::AgentBody Freeze(std::vector<std::string> volumes, std::uint32_t lease_ms = 0,
                          std::string job = "job-1") {
    proto::Freeze request;
    request.job_id = std::move(job);
    request.volumes = std::move(volumes);
    request.lease_ms = lease_ms;
    auto reply = RunCoro(io_, Service().Freeze(request));
    Service().AfterReply();  // as the session does once the reply is written
    return reply;
  }
  proto::AgentBody Thaw(std::string job = "job-1", bool snapshot_ok = true) {
    auto reply = RunCoro(io_, Service().Thaw(proto::Thaw{std::move(job), snapshot_ok}));
    Service().AfterReply();
    return reply;
  }

  void WriteHook(const std::string& name, const std::string& body) {
    std::string path = dir_.path() + "/hooks/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
  }
  std::string HookLog() {
    std::ifstream in(dir_.path() + "/hook.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  TempDir dir_;
  boost::asio::io_context io_;
  FsFreezeServiceOptions options_;
  std::unique_ptr<FsFreezeService> service_;
};

TEST_F(FsFreezeServiceTest, FreezeAndThawHoldTheWholeWindowOnExt4AndXfs) {
  auto ext4 = Mount("ext4", "ext4");
  auto xfs = Mount("xfs", "xfs");
  auto reply = Freeze({ext4->mount_point(), xfs->mount_point()}, 20000);
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(reply))
      << std::get<proto::ErrorReply>(reply).message;
  const auto& frozen = std::get<proto::Frozen>(reply);
  EXPECT_EQ(frozen.frozen_volumes.size(), 2u);
  EXPECT_EQ(frozen.lease_granted_ms, 20000u);
  EXPECT_TRUE(Service().InFrozenMode());
  EXPECT_TRUE(::access((options_.run_dir + "/freeze-record").c_str(), F_OK) == 0);

  auto status = Service().Status();
  EXPECT_TRUE(status.state.frozen);
  EXPECT_EQ(status.state.job_id, "job-1");
  EXPECT_GT(status.state.lease_left_ms, 0u);

  BackgroundWriter on_ext4(ext4->mount_point(), ext4->mount_point() + "/f");
  BackgroundWriter on_xfs(xfs->mount_point(), xfs->mount_point() + "/f");
  EXPECT_FALSE(on_ext4.WaitDone(kStaysBlocked));
  EXPECT_FALSE(on_xfs.WaitDone(kStaysBlocked));

  auto thawed_body = Thaw();
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(thawed_body));
  const auto& thawed = std::get<proto::Thawed>(thawed_body);
  EXPECT_TRUE(thawed.held_whole_window) << thawed.not_held_reason;
  EXPECT_FALSE(thawed.already_thawed);
  EXPECT_EQ(thawed.thawed_volumes.size(), 2u);
  EXPECT_GE(thawed.thawed_at_ns, thawed.frozen_at_ns);
  EXPECT_TRUE(on_ext4.WaitDone(kWriteCompletes));
  EXPECT_TRUE(on_xfs.WaitDone(kWriteCompletes));
  EXPECT_FALSE(Service().InFrozenMode());
  EXPECT_FALSE(::access((options_.run_dir + "/freeze-record").c_str(), F_OK) == 0);

  // Idempotent: the same verdict again, marked already thawed.
  auto again = Thaw();
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(again));
  EXPECT_TRUE(std::get<proto::Thawed>(again).already_thawed);
  EXPECT_TRUE(std::get<proto::Thawed>(again).held_whole_window);
  auto last = Service().Status().state;
  EXPECT_EQ(last.last_job_id, "job-1");
  EXPECT_TRUE(last.last_held_whole_window);
}

TEST_F(FsFreezeServiceTest, FrozenModeHoldsLogLinesInMemoryUntilThaw) {
  auto ext4 = Mount("ext4", "ext4");
  auto sink = std::make_shared<MemorySink>(1000);
  options_.logger = std::make_shared<spdlog::logger>("frozen-mode-test", sink);
  auto lines = [&] { return sink->Drain().size(); };
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(Freeze({ext4->mount_point()}, 20000)));
  // The "frozen" line was logged while frozen: it is held back, not at the sink.
  std::size_t before_thaw = lines();
  options_.logger->info("a line while frozen");
  EXPECT_EQ(lines(), 0u);
  auto thawed = RunCoro(io_, Service().Thaw(proto::Thaw{"job-1", true}));
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(thawed));
  // Replayed after the Thawed reply has gone out, not before (it would delay the reply).
  EXPECT_EQ(lines(), 0u) << "held lines were replayed before the reply";
  Service().AfterReply();
  std::size_t after_thaw = lines();
  EXPECT_GE(after_thaw, 2u) << "held lines were not flushed after thaw";
  (void)before_thaw;
}

TEST_F(FsFreezeServiceTest, LeaseExpiryThawsAndIsReported) {
  auto ext4 = Mount("ext4", "ext4");
  auto reply = Freeze({ext4->mount_point()}, 400);
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(reply));
  BackgroundWriter writer(ext4->mount_point(), ext4->mount_point() + "/f");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return !Service().InFrozenMode(); }, kGenerous));
  EXPECT_TRUE(writer.WaitDone(kWriteCompletes));

  auto body = Thaw();
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(body));
  const auto& thawed = std::get<proto::Thawed>(body);
  EXPECT_TRUE(thawed.already_thawed);
  EXPECT_TRUE(thawed.lease_expired);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_NE(thawed.not_held_reason.find("lease expired"), std::string::npos);
  EXPECT_GE(thawed.lease_expired_at_ns, std::get<proto::Frozen>(reply).lease_expires_at_ns);
  EXPECT_FALSE(Service().Status().state.last_held_whole_window);
  // For the closing note (not asserted): how late the agent's own lease thaw was.
  const double deadline = static_cast<double>(std::get<proto::Frozen>(reply).lease_expires_at_ns);
  RecordProperty("lease_expiry_late_us",
                 static_cast<int>((thawed.lease_expired_at_ns - deadline) / 1000));
  RecordProperty("lease_thaw_late_us", static_cast<int>((thawed.thawed_at_ns - deadline) / 1000));
}

TEST_F(FsFreezeServiceTest, ThawBehindTheAgentsBackIsNotHeld) {
  auto xfs = Mount("xfs", "xfs");
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(Freeze({xfs->mount_point()}, 20000)));
  ASSERT_EQ(testing::Shell("fsfreeze --unfreeze '" + xfs->mount_point() + "'"), 0);
  auto body = Thaw();
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(body));
  const auto& thawed = std::get<proto::Thawed>(body);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_NE(thawed.not_held_reason.find("thawed by someone else"), std::string::npos)
      << thawed.not_held_reason;
}

TEST_F(FsFreezeServiceTest, HooksRunInNameOrderAndThawInReverseWithEnvironment) {
  auto ext4 = Mount("ext4", "ext4");
  std::string log = dir_.path() + "/hook.log";
  WriteHook("10-db", "echo \"10-db $1 $QUIESCE_JOB_ID ${QUIESCE_SNAPSHOT_OK:-unset}\" >> " + log +
                         "; echo db says hi");
  WriteHook("20-app", "echo \"20-app $1 $QUIESCE_JOB_ID ${QUIESCE_SNAPSHOT_OK:-unset}\" >> " + log);
  WriteHook("30-not-executable", "exit 1");
  ::chmod((dir_.path() + "/hooks/30-not-executable").c_str(), 0644);
  auto reply = Freeze({ext4->mount_point()}, 20000);
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(reply));
  const auto& frozen = std::get<proto::Frozen>(reply);
  ASSERT_EQ(frozen.writers.size(), 2u);
  EXPECT_EQ(frozen.writers[0].name, "10-db");
  EXPECT_EQ(frozen.writers[0].output, "db says hi\n");
  EXPECT_EQ(frozen.writers[0].state, "exit 0");
  EXPECT_EQ(frozen.writers[0].phase, "freeze");
  auto body = Thaw("job-1", true);
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(body));
  EXPECT_TRUE(std::get<proto::Thawed>(body).held_whole_window);
  EXPECT_EQ(HookLog(),
            "10-db freeze job-1 unset\n20-app freeze job-1 unset\n"
            "20-app thaw job-1 1\n10-db thaw job-1 1\n");
  // agent.capnp: Thawed carries the thaw hooks only (the freeze results went in Frozen).
  const auto& thawed = std::get<proto::Thawed>(body);
  ASSERT_EQ(thawed.writers.size(), 2u);
  EXPECT_EQ(thawed.writers[0].name, "20-app");
  EXPECT_EQ(thawed.writers[1].name, "10-db");
  for (const auto& w : thawed.writers) EXPECT_EQ(w.phase, "thaw") << w.name;
}

TEST_F(FsFreezeServiceTest, FailingFreezeHookAbortsAndThawsTheHooksThatRan) {
  auto ext4 = Mount("ext4", "ext4");
  std::string log = dir_.path() + "/hook.log";
  WriteHook("10-a", "echo \"a $1\" >> " + log);
  WriteHook("20-b", "echo \"b $1\" >> " + log + "; [ \"$1\" = thaw ] || { echo broken; exit 3; }");
  WriteHook("30-c", "echo \"c $1\" >> " + log);
  auto reply = Freeze({ext4->mount_point()}, 20000);
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(reply));
  const auto& error = std::get<proto::ErrorReply>(reply);
  EXPECT_EQ(error.code, proto::ErrorCode::kHookFailed);
  EXPECT_NE(error.message.find("20-b"), std::string::npos);
  EXPECT_NE(error.message.find("exit 3"), std::string::npos);
  EXPECT_EQ(HookLog(), "a freeze\nb freeze\nb thaw\na thaw\n");
  EXPECT_FALSE(Service().InFrozenMode());
  EXPECT_FALSE(ThawMountPoint(ext4->mount_point()).was_frozen) << "left frozen";
  auto thawed = Thaw();
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(thawed));
  EXPECT_TRUE(std::get<proto::Thawed>(thawed).already_thawed);
  EXPECT_FALSE(std::get<proto::Thawed>(thawed).held_whole_window);
}

TEST_F(FsFreezeServiceTest, HookTimeoutAborts) {
  auto ext4 = Mount("ext4", "ext4");
  options_.hook_timeout = 300ms;
  WriteHook("10-slow", "[ \"$1\" = thaw ] || exec sleep 60");
  auto before = std::chrono::steady_clock::now();
  auto reply = Freeze({ext4->mount_point()}, 20000);
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(reply));
  EXPECT_EQ(std::get<proto::ErrorReply>(reply).code, proto::ErrorCode::kHookFailed);
  EXPECT_NE(std::get<proto::ErrorReply>(reply).message.find("timeout"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - before, kGenerous);
  EXPECT_FALSE(ThawMountPoint(ext4->mount_point()).was_frozen);
}

TEST_F(FsFreezeServiceTest, TmpfsIsSkippedAndReported) {
  auto tmpfs = Mount("tmp", "tmpfs");
  auto ext4 = Mount("ext4", "ext4");
  auto reply = Freeze({tmpfs->mount_point(), ext4->mount_point()}, 20000);
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(reply));
  const auto& frozen = std::get<proto::Frozen>(reply);
  EXPECT_EQ(frozen.frozen_volumes, std::vector<std::string>{ext4->mount_point()});
  ASSERT_EQ(frozen.skipped_volumes.size(), 1u);
  EXPECT_EQ(frozen.skipped_volumes[0].volume, tmpfs->mount_point());
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(Thaw()));
}

TEST_F(FsFreezeServiceTest, RequestsAreAnsweredTruthfully) {
  auto ext4 = Mount("ext4", "ext4");
  auto unknown = Thaw("never-seen");
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(unknown));
  EXPECT_EQ(std::get<proto::ErrorReply>(unknown).code, proto::ErrorCode::kUnknownJob);
  auto missing = Freeze({dir_.path() + "/not-a-mount"});
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(missing));
  EXPECT_EQ(std::get<proto::ErrorReply>(missing).code, proto::ErrorCode::kNotFound);
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(Freeze({ext4->mount_point()}, 20000)));
  auto second = Freeze({ext4->mount_point()}, 20000, "job-2");
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(second));
  EXPECT_EQ(std::get<proto::ErrorReply>(second).code, proto::ErrorCode::kBusy);
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(Thaw()));
}

TEST_F(FsFreezeServiceTest, AFreezeHeldBySomeoneElseIsAlreadyFrozen) {
  auto ext4 = Mount("ext4", "ext4");
  ASSERT_EQ(testing::Shell("fsfreeze --freeze '" + ext4->mount_point() + "'"), 0);
  auto reply = Freeze({ext4->mount_point()}, 20000);
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(reply));
  EXPECT_EQ(std::get<proto::ErrorReply>(reply).code, proto::ErrorCode::kAlreadyFrozen);
  EXPECT_TRUE(ThawMountPoint(ext4->mount_point()).was_frozen) << "someone else's freeze lost";
}

TEST_F(FsFreezeServiceTest, RestartedServiceThawsWhatTheRecordLists) {
  auto ext4 = Mount("ext4", "ext4");
  auto set = FsFreezeSet::Open({ext4->mount_point()});
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(set->FreezeAll(nullptr).ok());
  FreezeRecordFile(options_.run_dir)
      .Write(FreezeRecord{"dead-job", {ext4->mount_point()}, {}, {}})
      .ok();
  ASSERT_TRUE(Service().RecoverStaleFreeze().ok());
  auto hello = Service().Hello();
  EXPECT_EQ(hello.stale_freeze_cleared.job_id, "dead-job");
  EXPECT_EQ(hello.stale_freeze_cleared.volumes, std::vector<std::string>{ext4->mount_point()});
  EXPECT_GT(hello.stale_freeze_cleared.thawed_at_ns, 0u);
  EXPECT_FALSE(set->ThawAll()[0].was_frozen) << "the stale freeze was not thawed";
  EXPECT_FALSE(::access((options_.run_dir + "/freeze-record").c_str(), F_OK) == 0);
}

TEST(FsFreezeServiceLeaseTest, LeaseIsDefaultedAndCapped) {
  boost::asio::io_context io;
  FsFreezeServiceOptions options;
  options.default_lease = 5s;
  options.lease_cap = 8s;
  FsFreezeService service(io.get_executor(), options);
  EXPECT_EQ(service.GrantLease(0), 5s);
  EXPECT_EQ(service.GrantLease(7000), 7s);
  EXPECT_EQ(service.GrantLease(9000), 8s);
  options.lease_cap = 10 * limits::kMaxLease;
  FsFreezeService uncapped(io.get_executor(), options);
  EXPECT_EQ(uncapped.GrantLease(std::numeric_limits<std::uint32_t>::max()), limits::kMaxLease);
}

}  // namespace
}  // namespace qb::agent
