#include "guest-agent/windows/vss/vss_requester.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <thread>

#include "guest-agent/windows/vss/in_process_hold.h"
#include "guest-agent/windows/vss/testing/fake_vss.h"

namespace qb::agent::win {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);
const std::string kDataVolume = "\\\\?\\Volume{0000000d-0000-0000-0000-000000000000}\\";

std::vector<WriterMetadata> Writers() {
  WriterMetadata sql;
  sql.writer_id = "{a65faa63-5ea8-4ebc-9dbd-a0c4db26912a}";
  sql.instance_id = "{11111111-0000-0000-0000-000000000001}";
  sql.name = "SqlServerWriter";
  sql.components = {{"SQL01", "Sales", true, {"D:\\SQL\\Data\\", "D:\\SQL\\Logs\\sales.ldf"}},
                    {"SQL01", "master", true, {"C:\\Program Files\\SQL\\master.mdf"}}};
  WriterMetadata system;
  system.writer_id = "{e8132975-6f93-4464-a53e-1050253ae220}";
  system.instance_id = "{11111111-0000-0000-0000-000000000002}";
  system.name = "System Writer";
  system.components = {{"", "System Files", false, {"D:\\Tools\\"}}};
  return {sql, system};
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds within = kWait) {
  const auto end = Clock::now() + within;
  while (Clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

std::ptrdiff_t IndexOf(const std::vector<std::string>& v, const std::string& s) {
  auto it = std::find(v.begin(), v.end(), s);
  return it == v.end() ? -1 : it - v.begin();
}

struct Rig {
  explicit Rig(FakeVssOptions options,
               std::chrono::milliseconds provider_limit = kProviderHoldLimit)
      : provider(hold, provider_limit),
        vss(WithWriters(std::move(options)), provider),
        requester(vss, hold) {}

  static FakeVssOptions WithWriters(FakeVssOptions o) {
    if (o.writers.empty()) o.writers = Writers();
    return o;
  }

  FreezeSpec Spec(BackupType type = BackupType::kCopy, std::chrono::milliseconds within = kWait) {
    FreezeSpec spec;
    spec.job_id = "job-1";
    spec.volumes = {{kDataVolume, {"D:\\"}}};
    spec.type = type;
    spec.deadline = Clock::now() + within;
    return spec;
  }

  InProcessHold hold;
  ProviderStateMachine provider;
  FakeVss vss;
  VssRequester requester;
};

TEST(VssRequester, CopyBackupFollowsTheExactVssSequence) {
  Rig rig({});
  auto frozen = rig.requester.Freeze(rig.Spec());
  ASSERT_TRUE(frozen.ok()) << frozen.status().ToString();
  EXPECT_TRUE(rig.vss.writes_held());
  EXPECT_TRUE(rig.requester.holding());
  EXPECT_EQ(frozen->frozen_volumes, std::vector<std::string>{kDataVolume});
  EXPECT_EQ(rig.vss.writer_state("SqlServerWriter"), WriterState::kWaitingForThaw);

  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_TRUE(thawed.was_frozen);
  EXPECT_TRUE(thawed.held_whole_window) << thawed.not_held_reason;
  EXPECT_TRUE(thawed.backup_completed);
  EXPECT_EQ(thawed.hold_end, HoldEnd::kCommitted);
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_NE(thawed.backup_document.find("backupType=\"COPY\""), std::string::npos);
  EXPECT_EQ(rig.vss.writer_state("SqlServerWriter"), WriterState::kStable);

  const std::vector<std::string> expected = {
      "CreateVssBackupComponents",
      "InitializeForBackup",
      "SetBackupState(COPY)",
      "SetContext(transportable)",
      "GatherWriterMetadata",
      "AddComponent(SqlServerWriter:SQL01\\Sales)",
      "StartSnapshotSet",
      "AddToSnapshotSet(" + kDataVolume + ")",
      "PrepareForBackup",
      "GatherWriterStatus",
      "DoSnapshotSet",
      "Wait",
      "SetBackupSucceeded(SqlServerWriter:SQL01\\Sales,true)",
      "BackupComplete",
      "GatherWriterStatus",
      "SaveAsXML",
  };
  EXPECT_EQ(rig.vss.requester_calls(), expected);
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
  // The provider was called in VSS's order, and committed inside the hold.
  auto calls = rig.vss.calls();
  EXPECT_LT(IndexOf(calls, "provider.PreCommitSnapshots"),
            IndexOf(calls, "provider.CommitSnapshots"));
  EXPECT_LT(IndexOf(calls, "provider.CommitSnapshots"), IndexOf(calls, "writers.OnThaw"));
  EXPECT_LT(IndexOf(calls, "provider.PostCommitSnapshots"), IndexOf(calls, "BackupComplete"));
}

TEST(VssRequester, FullBackupOnlyWhenAsked) {
  Rig rig({});
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec(BackupType::kFull)).ok());
  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_TRUE(thawed.backup_completed);
  EXPECT_NE(IndexOf(rig.vss.requester_calls(), "SetBackupState(FULL)"), -1);
  EXPECT_NE(thawed.backup_document.find("backupType=\"FULL\""), std::string::npos);
  EXPECT_TRUE(rig.vss.violations().empty());
}

TEST(VssRequester, ClientSkuFallsBackToAPlainContext) {
  FakeVssOptions o;
  o.transportable_unsupported = true;
  Rig rig(o);
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  auto calls = rig.vss.requester_calls();
  EXPECT_EQ(IndexOf(calls, "SetContext(plain)"), IndexOf(calls, "SetContext(transportable)") + 1);
  EXPECT_TRUE(rig.requester.Thaw(true).held_whole_window);
  EXPECT_TRUE(rig.vss.violations().empty());
}

TEST(VssRequester, SelectsOnlySelectableComponentsOnFrozenVolumes) {
  Rig rig({});
  auto frozen = rig.requester.Freeze(rig.Spec());
  ASSERT_TRUE(frozen.ok());
  EXPECT_EQ(rig.vss.added_components(), std::vector<std::string>{"SqlServerWriter:SQL01\\Sales"});
  EXPECT_EQ(frozen->selected_components, std::vector<std::string>{"SqlServerWriter: SQL01\\Sales"});
  rig.requester.Thaw(true);
}

TEST(VssRequester, WriterFailingAtPrepareFailsTheFreezeAndAborts) {
  FakeVssOptions o;
  o.fault = FakeFault::kWriterFailsAtPrepareBackup;
  o.failing_writer = "SqlServerWriter";
  Rig rig(o);
  auto frozen = rig.requester.Freeze(rig.Spec());
  ASSERT_FALSE(frozen.ok());
  EXPECT_NE(frozen.status().message().find("VSS_WS_FAILED_AT_PREPARE_BACKUP"), std::string::npos)
      << frozen.status().ToString();
  auto calls = rig.vss.requester_calls();
  EXPECT_EQ(IndexOf(calls, "DoSnapshotSet"), -1) << "no snapshot with a failed writer";
  EXPECT_EQ(calls.back(), "AbortBackup");
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_FALSE(rig.requester.holding());
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, WriterFailingAtFreezeFailsTheFreezeAndAborts) {
  FakeVssOptions o;
  o.fault = FakeFault::kWriterFailsAtFreeze;
  o.failing_writer = "SqlServerWriter";
  Rig rig(o);
  auto frozen = rig.requester.Freeze(rig.Spec());
  ASSERT_FALSE(frozen.ok());
  EXPECT_NE(frozen.status().message().find("VSS_E_WRITERERROR_NONRETRYABLE"), std::string::npos)
      << frozen.status().ToString();
  auto calls = rig.vss.calls();
  EXPECT_EQ(IndexOf(calls, "provider.CommitSnapshots"), -1);
  EXPECT_NE(IndexOf(calls, "AbortBackup"), -1);
  EXPECT_FALSE(rig.requester.holding());
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, WriterFailingAtThawMeansNotHeld) {
  FakeVssOptions o;
  o.fault = FakeFault::kWriterFailsAtThaw;
  o.failing_writer = "SqlServerWriter";
  Rig rig(o);
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_NE(thawed.not_held_reason.find("VSS_WS_FAILED_AT_THAW"), std::string::npos)
      << thawed.not_held_reason;
  auto failed = std::find_if(thawed.writers.begin(), thawed.writers.end(),
                             [](const proto::WriterResult& w) { return !w.ok; });
  ASSERT_NE(failed, thawed.writers.end());
  EXPECT_EQ(failed->name, "SqlServerWriter");
  EXPECT_EQ(failed->phase, "thaw");
  EXPECT_TRUE(rig.vss.violations().empty());
}

TEST(VssRequester, ProviderNeverSignallingTimesOutThenCancelsBeforeAbort) {
  FakeVssOptions o;
  o.fault = FakeFault::kProviderNeverSignals;
  Rig rig(o);
  auto frozen = rig.requester.Freeze(rig.Spec(BackupType::kCopy, 300ms));
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.status().code(), Code::kTimeout) << frozen.status().ToString();
  auto calls = rig.vss.requester_calls();
  ASSERT_NE(IndexOf(calls, "Cancel"), -1);
  EXPECT_LT(IndexOf(calls, "Cancel"), IndexOf(calls, "AbortBackup"));
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, ThawDuringAStalledFreezeCancelsIt) {
  FakeVssOptions o;
  o.fault = FakeFault::kProviderNeverSignals;
  Rig rig(o);
  auto freeze = std::async(std::launch::async, [&] { return rig.requester.Freeze(rig.Spec()); });
  ASSERT_TRUE(WaitUntil([&] { return IndexOf(rig.vss.calls(), "DoSnapshotSet") >= 0; }));
  ThawResult thawed = rig.requester.Thaw(false);
  EXPECT_FALSE(thawed.was_frozen);
  auto frozen = freeze.get();
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.status().code(), Code::kCancelled);
  auto calls = rig.vss.requester_calls();
  EXPECT_LT(IndexOf(calls, "Cancel"), IndexOf(calls, "AbortBackup"));
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, VssHoldWritesTimeoutMeansNotHeld) {
  FakeVssOptions o;
  o.vss_hold_limit = 200ms;  // VSS gives up before our provider would
  Rig rig(o);
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  ASSERT_TRUE(WaitUntil([&] { return !rig.vss.writes_held(); }));
  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_FALSE(thawed.backup_completed);
  EXPECT_NE(thawed.not_held_reason.find("VSS_E_HOLD_WRITES_TIMEOUT"), std::string::npos)
      << thawed.not_held_reason;
  auto calls = rig.vss.requester_calls();
  EXPECT_EQ(IndexOf(calls, "BackupComplete"), -1);
  EXPECT_NE(IndexOf(calls, "AbortBackup"), -1);
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, ProviderHoldLimitReleasesWritesOnItsOwn) {
  Rig rig({}, 150ms);
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  ASSERT_TRUE(WaitUntil([&] { return rig.hold.hold_end() != HoldEnd::kNotEnded; }));
  EXPECT_TRUE(WaitUntil([&] { return !rig.vss.writes_held(); }));
  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_EQ(thawed.hold_end, HoldEnd::kHoldLimit);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_NE(thawed.not_held_reason.find("hold-limit"), std::string::npos);
  EXPECT_NE(IndexOf(rig.vss.requester_calls(), "AbortBackup"), -1);
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, RealLimitsLetTheProviderGoBeforeVssGivesUp) {
  // The production constants, unscaled (this test waits kProviderHoldLimit, 8.5 s): with no
  // Thaw at all, our provider must release writes before VSS's 10 s hold-writes limit fires.
  Rig rig({});
  ASSERT_EQ(rig.vss.calls().size(), 0u);
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  ASSERT_TRUE(WaitUntil([&] { return rig.hold.hold_end() != HoldEnd::kNotEnded; },
                        limits::kVssWriterFreezeLimit));
  EXPECT_EQ(rig.hold.hold_end(), HoldEnd::kHoldLimit);
  EXPECT_TRUE(WaitUntil([&] { return !rig.vss.writes_held(); }));
  EXPECT_LT(rig.vss.longest_hold(), limits::kVssHoldWritesLimit);
  EXPECT_EQ(IndexOf(rig.vss.calls(), "vss.HoldWritesTimeout"), -1) << "VSS gave up first";
  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, ThawWithoutSnapshotAbortsTheBackup) {
  Rig rig({});
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  ThawResult thawed = rig.requester.Thaw(false);
  EXPECT_EQ(thawed.hold_end, HoldEnd::kAborted);
  EXPECT_FALSE(thawed.backup_completed);
  EXPECT_TRUE(thawed.held_whole_window) << "the hold lasted until this Thaw";
  auto calls = rig.vss.requester_calls();
  EXPECT_EQ(IndexOf(calls, "BackupComplete"), -1);
  EXPECT_NE(IndexOf(calls, "AbortBackup"), -1);
  EXPECT_EQ(calls.back(), "SaveAsXML");
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssRequester, BackupCompleteFailureIsReported) {
  FakeVssOptions o;
  o.fault = FakeFault::kBackupCompleteFails;
  o.failing_writer = "SqlServerWriter";
  Rig rig(o);
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  ThawResult thawed = rig.requester.Thaw(true);
  EXPECT_FALSE(thawed.backup_completed);
  EXPECT_FALSE(thawed.held_whole_window);
  EXPECT_NE(thawed.not_held_reason.find("BackupComplete"), std::string::npos);
}

TEST(VssRequester, NoVssIsUnsupported) {
  FakeVssOptions o;
  o.vss_missing = true;
  Rig rig(o);
  auto frozen = rig.requester.Freeze(rig.Spec());
  ASSERT_FALSE(frozen.ok());
  EXPECT_EQ(frozen.status().code(), Code::kUnsupported);
}

TEST(VssRequester, OneFreezeAtATimeAndThawIsIdempotent) {
  Rig rig({});
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  auto second = rig.requester.Freeze(rig.Spec());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kBusy);
  EXPECT_TRUE(rig.requester.Thaw(true).was_frozen);
  EXPECT_FALSE(rig.requester.Thaw(true).was_frozen);
  // And the next backup uses a fresh components object.
  ASSERT_TRUE(rig.requester.Freeze(rig.Spec()).ok());
  EXPECT_TRUE(rig.requester.Thaw(true).held_whole_window);
  EXPECT_EQ(rig.vss.backups_created(), 2);
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(PathOnMountPoints, MatchesCaseInsensitivelyUnderTheMount) {
  EXPECT_TRUE(PathOnMountPoints("d:\\sql\\data\\x.mdf", {"D:\\"}));
  EXPECT_TRUE(PathOnMountPoints("D:/SQL/x", {"D:\\SQL"}));
  EXPECT_TRUE(PathOnMountPoints("D:\\SQL", {"D:\\SQL\\"}));
  EXPECT_FALSE(PathOnMountPoints("D:\\SQL2\\x", {"D:\\SQL"}));
  EXPECT_FALSE(PathOnMountPoints("C:\\x", {"D:\\"}));
  EXPECT_FALSE(PathOnMountPoints("C:\\x", {""}));
}

}  // namespace
}  // namespace qb::agent::win
