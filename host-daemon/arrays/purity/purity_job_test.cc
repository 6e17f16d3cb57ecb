// A whole quiesced job (plan, prepare, freeze, snapshot, thaw, verify, record) through the
// daemon's JobRunner, with the TestAgent double as the guest and PurityBackend talking HTTPS to
// the FakeFlashArray simulator. Prints the phase timings and the REST calls of the freeze window.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <thread>

#include "host-daemon/arrays/purity/purity_backend.h"
#include "host-daemon/arrays/purity/purity_names.h"
#include "host-daemon/arrays/purity/purity_test_support.h"
#include "host-daemon/jobs/job_runner.h"
#include "tests/daemon/test_agent.h"
#include "tests/daemon/test_env.h"

namespace qb::arrays::purity {
namespace {

using namespace std::chrono_literals;
using qb::testing::FakeArrayFault;
using qb::testing::TestAgent;
using Clock = std::chrono::steady_clock;

class PurityJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PurityBackendOptions options;
    options.rest = sim_.Options();
    auto backend = std::make_unique<PurityBackend>(options, kTestApiToken);
    backend_ = backend.get();
    ASSERT_TRUE(backends_.Add(std::move(backend)).ok());
    auto opened = catalog::Catalog::Open(":memory:");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    catalog_ = std::move(opened).value();
  }

  void TearDown() override {
    registry_.StopAll();
    io_.Stop();
    pool_.join();
    runner_.reset();
  }

  // A guest with `lun_count` FlashArray LUNs named by WWN, as libvirt discovery would give them.
  TestAgent& AddGuest(const std::string& vm, int lun_count) {
    std::vector<LunSpec> luns;
    qb::testing::TestAgentOptions o;
    o.socket_path = dir_ / (vm + ".sock");
    // A boot disk that is no array LUN, then one SCSI disk per LUN.
    o.inventory.disks.push_back(
        proto::Disk{"vda", "", "BOOT", "virtio", "boot", "virtio", 8ull << 30});
    o.inventory.volumes.push_back(
        proto::Volume{"/", "/dev/vda1", "ext4", true, {"vda"}, 8ull << 30, {"/"}});
    for (int i = 0; i < lun_count; ++i) {
      const std::string serial = sim_.array.AddVolume(vm + "-lun" + std::to_string(i));
      const std::string naa = NaaOfSerial(serial);
      // As libvirt discovery gives a multipath LUN: the host device path and its <wwn>.
      luns.push_back(LunSpec{"purity", "/dev/disk/by-id/dm-uuid-mpath-3" + naa, naa});
      // The guest sees each LUN as a SCSI disk whose VPD 0x83 NAA is the volume's.
      const std::string disk = "sd" + std::string(1, static_cast<char>('a' + i));
      const std::string mount = "/data" + std::to_string(i);
      o.inventory.disks.push_back(
          proto::Disk{disk, naa, serial, "PURE", "FlashArray", "scsi", 1 << 30});
      o.inventory.volumes.push_back(
          proto::Volume{mount, "/dev/" + disk, "xfs", true, {disk}, 1 << 30, {mount}});
    }
    agents_[vm] = std::make_unique<TestAgent>(o);
    link::LinkOptions lo;
    lo.guest_name = vm;
    lo.endpoint = *link::ParseEndpoint("unix:" + o.socket_path);
    lo.backoff_min = 10ms;
    lo.backoff_max = 100ms;
    auto guest_link = link::GuestLink::Create(io_.executor(), lo);
    guest_link->Start();
    jobs::Guest guest;
    guest.spec.name = vm;
    guest.spec.endpoint = "unix:" + o.socket_path;
    guest.spec.luns = luns;
    guest.link = guest_link;
    EXPECT_TRUE(registry_.Add(guest).ok());
    EXPECT_TRUE(io_.Run(guest_link->WaitConnected(Clock::now() + 10s)).ok());
    return *agents_[vm];
  }

  proto::JobReport Snap(const std::string& vm) {
    if (!runner_) {
      jobs::JobRunnerOptions options;
      options.late_sweep_delay = 50ms;
      runner_ = std::make_unique<jobs::JobRunner>(io_.executor(), pool_.get_executor(), backends_,
                                                  *catalog_, registry_, options);
    }
    proto::SnapshotRequest request;
    request.vms = {vm};
    return io_.Run(runner_->Snapshot(request));
  }

  static void PrintFigures(const std::string& label, const proto::JobReport& report) {
    std::cout << "[ figures  ] " << label << ": freeze window " << report.freeze_window_us
              << " us;";
    for (const auto& p : report.phases) std::cout << " " << p.phase << "=" << p.duration_us << "us";
    std::cout << "\n";
  }

  // The requests the array saw after the dry run (Prepare's last request), i.e. the snapshot
  // phase and whatever follows it in the job.
  std::vector<std::string> RequestsAfterDryRun() const {
    const auto all = sim_.array.Requests();
    auto last = std::find_if(all.rbegin(), all.rend(), [](const std::string& r) {
      return r.find("/test") != std::string::npos;
    });
    return {last.base(), all.end()};
  }

  // Declared first so it is destroyed last: the links and timers below belong to its
  // io_context and must go before it does.
  qb::testing::IoThread io_;
  SimulatedArray sim_;
  qb::testing::TempDir dir_;
  BackendSet backends_;
  PurityBackend* backend_ = nullptr;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::map<std::string, std::unique_ptr<TestAgent>> agents_;
  jobs::GuestRegistry registry_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<jobs::JobRunner> runner_;
};

TEST_F(PurityJobTest, OneLunJobIsApplicationConsistentWithOneRequestInTheWindow) {
  auto& agent = AddGuest("vm1", 1);
  auto report = Snap("vm1");
  ASSERT_EQ(report.error_code, 0) << report.error;
  EXPECT_EQ(report.consistency, "application-consistent");
  ASSERT_EQ(report.snapshots.size(), 1u);
  EXPECT_FALSE(agent.frozen());
  EXPECT_EQ(RequestsAfterDryRun(), std::vector<std::string>{"POST /volume-snapshots"});
  EXPECT_EQ(sim_.array.VolumeSnapshotNames().size(), 1u);
  PrintFigures("job, 1 LUN", report);
}

TEST_F(PurityJobTest, FourLunJobIsOneGroupSnapshot) {
  auto& agent = AddGuest("vm4", 4);
  auto report = Snap("vm4");
  ASSERT_EQ(report.error_code, 0) << report.error;
  EXPECT_EQ(report.consistency, "application-consistent");
  EXPECT_EQ(report.snapshots.size(), 4u);
  EXPECT_FALSE(agent.frozen());
  EXPECT_EQ(RequestsAfterDryRun(), std::vector<std::string>{"POST /protection-group-snapshots"});
  EXPECT_EQ(sim_.array.VolumeSnapshotNames().size(), 4u);
  PrintFigures("job, 4 LUNs", report);
}

TEST_F(PurityJobTest, ArraySlowerThanTheLeaseThawsAndIsNeverApplicationConsistent) {
  auto& agent = AddGuest("vm1", 1);
  sim_.array.Inject({FakeArrayFault::Kind::kSlowAnswer, "POST", "/volume-snapshots", 200,
                     std::nullopt, "", limits::kDefaultLease + 5s, 1});
  auto report = Snap("vm1");
  EXPECT_NE(report.error_code, 0);
  EXPECT_NE(report.consistency, "application-consistent");
  EXPECT_FALSE(agent.frozen());
  ASSERT_TRUE(agent.last_thaw());
  EXPECT_FALSE(agent.last_thaw()->snapshot_ok);
  PrintFigures("job, array past the deadline", report);
  // The create landed on the array after all; the job's late sweep finds it by key and (default
  // policy) removes it. Poll with a generous bound: the sweep runs after the thaw.
  const std::string landed = "vm1-lun0." + SuffixForJobKey(report.job_id);
  const auto give_up = Clock::now() + 20s;
  while (sim_.array.HasVolumeSnapshot(landed) && Clock::now() < give_up) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(sim_.array.HasVolumeSnapshot(landed)) << landed << " was left on the array";
  EXPECT_TRUE(sim_.array.HasVolumeSnapshot(landed, /*include_destroyed=*/true));
}

TEST_F(PurityJobTest, ExpiredSessionDuringTheJobStillSucceeds) {
  AddGuest("vm1", 1);
  ASSERT_EQ(Snap("vm1").error_code, 0);
  sim_.array.ExpireSessions();
  auto report = Snap("vm1");
  EXPECT_EQ(report.error_code, 0) << report.error;
  EXPECT_EQ(report.consistency, "application-consistent");
}

}  // namespace
}  // namespace qb::arrays::purity
