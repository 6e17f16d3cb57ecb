#include "guest-agent/windows/vss_agent_service.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <sstream>
#include <thread>

#include "guest-agent/windows/testing/fixed_inventory.h"
#include "guest-agent/windows/vss/in_process_hold.h"
#include "guest-agent/windows/vss/testing/fake_vss.h"

namespace qb::agent::win {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

template <typename T>
T RunIo(asio::io_context& io, asio::awaitable<T> work) {
  auto future = asio::co_spawn(io, std::move(work), asio::use_future);
  io.restart();
  while (future.wait_for(0s) != std::future_status::ready) io.run_one_for(kWait);
  return future.get();
}

bool WaitUntil(const std::function<bool()>& done) {
  const auto end = Clock::now() + kWait;
  while (Clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

struct ServiceRig {
  explicit ServiceRig(FakeVssOptions o = {}, std::chrono::milliseconds vss_hold = {})
      : provider(hold), vss(WithDefaults(std::move(o), vss_hold), provider), requester(vss, hold) {
    VssAgentServiceOptions options;
    options.agent_version = "test";
    service = std::make_unique<VssAgentService>(io.get_executor(), requester, inventory, options);
  }
  static FakeVssOptions WithDefaults(FakeVssOptions o, std::chrono::milliseconds vss_hold) {
    if (o.writers.empty()) {
      WriterMetadata sql;
      sql.name = "SqlServerWriter";
      sql.components = {{"SQL01", "Sales", true, {"D:\\SQL\\"}}};
      o.writers = {sql};
    }
    if (vss_hold.count() > 0) o.vss_hold_limit = vss_hold;
    return o;
  }

  proto::AgentBody Freeze(std::uint32_t lease_ms = 0,
                          std::vector<std::string> volumes = {FixedInventory::kDataVolume}) {
    proto::Freeze f;
    f.job_id = "job-1";
    f.volumes = std::move(volumes);
    f.mode = proto::FreezeMode::kVssCopy;
    f.lease_ms = lease_ms;
    return RunIo(io, service->Freeze(f));
  }
  proto::AgentBody Thaw(bool ok = true, std::string job = "job-1") {
    const proto::Thaw t{job, ok};
    return RunIo(io, service->Thaw(t));
  }

  asio::io_context io;
  InProcessHold hold;
  ProviderStateMachine provider;
  FakeVss vss;
  VssRequester requester;
  FixedInventory inventory;
  std::unique_ptr<VssAgentService> service;
};

TEST(VssAgentService, FreezeThenThawHoldsTheWholeWindow) {
  ServiceRig rig;
  auto body = rig.Freeze();
  auto* frozen = std::get_if<proto::Frozen>(&body);
  ASSERT_NE(frozen, nullptr) << std::get<proto::ErrorReply>(body).message;
  EXPECT_EQ(frozen->frozen_volumes, std::vector<std::string>{FixedInventory::kDataVolume});
  EXPECT_EQ(frozen->lease_granted_ms, static_cast<std::uint32_t>(kDefaultLease.count()));
  EXPECT_GT(frozen->lease_expires_at_ns, frozen->frozen_at_ns);
  ASSERT_EQ(frozen->writers.size(), 1u);
  EXPECT_EQ(frozen->writers[0].name, "SqlServerWriter");
  EXPECT_TRUE(rig.service->InFrozenMode());
  EXPECT_TRUE(rig.vss.writes_held());
  auto status = rig.service->Status();
  EXPECT_TRUE(status.state.frozen);
  EXPECT_EQ(status.state.job_id, "job-1");
  EXPECT_EQ(status.state.mode, proto::FreezeMode::kVssCopy);

  auto thaw = rig.Thaw(true);
  auto* thawed = std::get_if<proto::Thawed>(&thaw);
  ASSERT_NE(thawed, nullptr);
  EXPECT_TRUE(thawed->held_whole_window) << thawed->not_held_reason;
  EXPECT_FALSE(thawed->lease_expired);
  EXPECT_FALSE(thawed->already_thawed);
  EXPECT_NE(thawed->backup_components_document.find("BACKUP_COMPONENTS"), std::string::npos);
  EXPECT_FALSE(rig.service->InFrozenMode());
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_TRUE(rig.vss.violations().empty());
  EXPECT_EQ(rig.service->Status().state.last_job_id, "job-1");
  EXPECT_TRUE(rig.service->Status().state.last_held_whole_window);

  // The same Thaw again: the stored verdict, marked already thawed.
  auto again = rig.Thaw(true);
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(again));
  EXPECT_TRUE(std::get<proto::Thawed>(again).already_thawed);
}

TEST(VssAgentService, LeaseExpiryThawsWithoutTheIoLoop) {
  ServiceRig rig;
  auto body = rig.Freeze(300);
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(body));
  EXPECT_EQ(std::get<proto::Frozen>(body).lease_granted_ms, 300u);
  // Nobody runs the io_context now: only the watchdog thread can release the hold.
  ASSERT_TRUE(WaitUntil([&] { return rig.hold.hold_end() == HoldEnd::kAborted; }));
  EXPECT_TRUE(WaitUntil([&] { return !rig.vss.writes_held(); }));
  ASSERT_TRUE(WaitUntil([&] {
    auto calls = rig.vss.requester_calls();
    return !calls.empty() && calls.back() == "SaveAsXML";
  }));
  auto thaw = rig.Thaw(true);
  auto* thawed = std::get_if<proto::Thawed>(&thaw);
  ASSERT_NE(thawed, nullptr);
  EXPECT_TRUE(thawed->lease_expired);
  EXPECT_TRUE(thawed->already_thawed);
  EXPECT_FALSE(thawed->held_whole_window);
  EXPECT_GT(thawed->lease_expired_at_ns, 0u);
  EXPECT_FALSE(rig.service->InFrozenMode());
  auto calls = rig.vss.requester_calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "BackupComplete"), 0);
  EXPECT_TRUE(rig.vss.violations().empty()) << rig.vss.violations().front();
}

TEST(VssAgentService, LeaseIsCappedToWhatVssCanHold) {
  ServiceRig rig;
  EXPECT_EQ(rig.service->GrantLease(0), kDefaultLease);
  EXPECT_EQ(rig.service->GrantLease(60000), kDefaultLease);
  EXPECT_EQ(rig.service->GrantLease(1000), 1000ms);
  EXPECT_LT(rig.service->GrantLease(60000), limits::kVssHoldWritesLimit);
}

TEST(VssAgentService, UnknownVolumeAndJobAreRefused) {
  ServiceRig rig;
  auto body = rig.Freeze(0, {"\\\\?\\Volume{nope}\\"});
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(body));
  EXPECT_EQ(std::get<proto::ErrorReply>(body).code, proto::ErrorCode::kNotFound);
  EXPECT_FALSE(rig.service->InFrozenMode());
  EXPECT_EQ(rig.vss.backups_created(), 0) << "nothing reached VSS";
  auto thaw = rig.Thaw(true, "job-unknown");
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(thaw));
  EXPECT_EQ(std::get<proto::ErrorReply>(thaw).code, proto::ErrorCode::kUnknownJob);
}

TEST(VssAgentService, SecondFreezeIsBusy) {
  ServiceRig rig;
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(rig.Freeze()));
  auto second = rig.Freeze();
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(second));
  EXPECT_EQ(std::get<proto::ErrorReply>(second).code, proto::ErrorCode::kBusy);
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(rig.Thaw()));
}

TEST(VssAgentService, WriterFailureIsAFreezeFailedErrorWithNothingHeld) {
  FakeVssOptions o;
  o.fault = FakeFault::kWriterFailsAtFreeze;
  o.failing_writer = "SqlServerWriter";
  ServiceRig rig(o);
  auto body = rig.Freeze();
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(body));
  EXPECT_EQ(std::get<proto::ErrorReply>(body).code, proto::ErrorCode::kFreezeFailed);
  EXPECT_FALSE(rig.service->InFrozenMode());
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_TRUE(rig.vss.violations().empty());
}

TEST(VssAgentService, NoVssIsUnsupported) {
  FakeVssOptions o;
  o.vss_missing = true;
  ServiceRig rig(o);
  auto body = rig.Freeze();
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(body));
  EXPECT_EQ(std::get<proto::ErrorReply>(body).code, proto::ErrorCode::kUnsupported);
}

TEST(VssAgentService, ShutdownThawsAHeldFreeze) {
  ServiceRig rig;
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(rig.Freeze()));
  rig.service->Shutdown();
  EXPECT_FALSE(rig.service->InFrozenMode());
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_EQ(rig.hold.hold_end(), HoldEnd::kAborted);
  EXPECT_FALSE(rig.service->Status().state.last_held_whole_window);
}

TEST(VssAgentService, FrozenModeKeepsLogsInMemoryUntilThaw) {
  // The agent must write nothing to a volume VSS holds: while frozen, log lines stay in memory
  // and reach the real sink (a file on disk in production) only after the thaw.
  auto out = std::make_shared<std::ostringstream>();
  auto logger = std::make_shared<spdlog::logger>(
      "frozen-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(*out));
  logger->set_pattern("%v");
  InProcessHold hold;
  ProviderStateMachine provider(hold);
  FakeVss vss(ServiceRig::WithDefaults({}, {}), provider);
  VssRequester requester(vss, hold);
  FixedInventory inventory;
  asio::io_context io;
  VssAgentServiceOptions options;
  options.logger = logger;
  VssAgentService service(io.get_executor(), requester, inventory, options);
  proto::Freeze f;
  f.job_id = "quiet";
  f.volumes = {FixedInventory::kDataVolume};
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(RunIo(io, service.Freeze(f))));
  logger->info("line written while frozen");
  EXPECT_EQ(out->str().find("line written while frozen"), std::string::npos);
  const proto::Thaw t{"quiet", true};
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(RunIo(io, service.Thaw(t))));
  EXPECT_NE(out->str().find("line written while frozen"), std::string::npos) << out->str();
}

TEST(VssAgentService, HelloSaysWindowsAndVss) {
  ServiceRig rig;
  auto hello = rig.service->Hello();
  EXPECT_EQ(hello.os.family, proto::OsFamily::kWindows);
  EXPECT_NE(std::find(hello.capabilities.begin(), hello.capabilities.end(), "vss"),
            hello.capabilities.end());
  EXPECT_FALSE(hello.freeze_state.frozen);
}

}  // namespace
}  // namespace qb::agent::win
