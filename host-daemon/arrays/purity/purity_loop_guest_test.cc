// A whole quiesced job of a loop-backed test guest against the FlashArray simulator: the real
// quiesce-agent binary (unix socket transport) freezes an ext4 image loop-mounted in a temp dir,
// the daemon's JobRunner plans, freezes, has PurityBackend cut the snapshot on the simulator,
// thaws and records. Root only (loop mounts); skipped otherwise.
//
// Safety: before any Freeze is sent, the test asks the agent for its inventory and checks that
// the plan freezes exactly the temp mount (the shared machine's own file systems are never in
// it); the test aborts otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "guest-agent/linux/testing/loop_fs.h"
#include "host-daemon/arrays/purity/purity_backend.h"
#include "host-daemon/arrays/purity/purity_names.h"
#include "host-daemon/arrays/purity/purity_test_support.h"
#include "host-daemon/jobs/freeze_plan.h"
#include "host-daemon/jobs/job_runner.h"
#include "tests/daemon/test_env.h"

extern "C" char** environ;

namespace qb::arrays::purity {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kAgentStarts = 20s;
constexpr auto kWriteCompletes = 20s;

// The kernel name of the whole block device a mount point lives on ("loop3").
std::string BlockDeviceOf(const std::string& mount_point) {
  struct stat st {};
  if (::stat(mount_point.c_str(), &st) != 0) return "";
  const std::string link =
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  std::error_code ec;
  auto target = std::filesystem::read_symlink(link, ec);
  return ec ? "" : target.filename().string();
}

// One quiesce-agent child process on a unix socket; killed by pid and reaped on destruction.
class AgentChild {
 public:
  explicit AgentChild(std::string dir) : dir_(std::move(dir)), socket_(dir_ + "/agent.sock") {}
  ~AgentChild() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  bool Start() {
    ::mkdir((dir_ + "/hooks").c_str(), 0755);
    std::ofstream(dir_ + "/agent.toml") << "[log]\nlevel = \"info\"\n";
    std::vector<std::string> args = {QB_AGENT_BINARY, "--config",    dir_ + "/agent.toml",
                                     "--unix",        socket_,       "--no-virtio-serial",
                                     "--run-dir",     dir_ + "/run", "--hooks-dir",
                                     dir_ + "/hooks", "--foreground"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/agent.log";
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    const auto deadline = Clock::now() + kAgentStarts;
    while (Clock::now() < deadline) {
      if (::access(socket_.c_str(), F_OK) == 0) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  const std::string& socket_path() const { return socket_; }

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

class PurityLoopGuestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!agent::testing::IsRoot()) GTEST_SKIP() << "needs root (loop mounts)";
    mount_ = std::make_unique<agent::testing::TestMount>(dir_.path(), "lun0", "ext4");
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    loop_disk_ = BlockDeviceOf(mount_->mount_point());
    ASSERT_EQ(loop_disk_.rfind("loop", 0), 0u) << "not a loop device: " << loop_disk_;
    agent_ = std::make_unique<AgentChild>(dir_.path());
    ASSERT_TRUE(agent_->Start()) << "quiesce-agent did not start; see " << dir_.path()
                                 << "/agent.log";

    PurityBackendOptions options;
    options.rest = sim_.Options();
    ASSERT_TRUE(backends_.Add(std::make_unique<PurityBackend>(options, kTestApiToken)).ok());
    auto opened = catalog::Catalog::Open(":memory:");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    catalog_ = std::move(opened).value();

    // The array volume behind the guest's disk; the loop device has no NAA, so the guest disk is
    // mapped to the LUN by name (GuestSpec::disk_map), as for file-backed test LUNs.
    const std::string serial = sim_.array.AddVolume("loopvm-lun0");
    spec_.name = "loopvm";
    spec_.endpoint = "unix:" + agent_->socket_path();
    spec_.luns = {LunSpec{"purity", "loopvm-lun0", NaaOfSerial(serial)}};
    spec_.disk_map = {{loop_disk_, "loopvm-lun0"}};

    link::LinkOptions lo;
    lo.guest_name = spec_.name;
    lo.endpoint = *link::ParseEndpoint(spec_.endpoint);
    link_ = link::GuestLink::Create(io_.executor(), lo);
    link_->Start();
    ASSERT_TRUE(io_.Run(link_->WaitConnected(Clock::now() + 20s)).ok());
    jobs::Guest guest;
    guest.spec = spec_;
    guest.link = link_;
    ASSERT_TRUE(registry_.Add(guest).ok());
  }

  void TearDown() override {
    registry_.StopAll();
    io_.Stop();
    pool_.join();
    runner_.reset();
    agent_.reset();  // kill -9 first: a dead agent cannot hold a freeze
    if (mount_) agent::testing::Shell("fsfreeze -u '" + mount_->mount_point() + "' 2>/dev/null");
    mount_.reset();
  }

  // Declared first so it is destroyed last: the links and timers below belong to its
  // io_context and must go before it does.
  qb::testing::IoThread io_;
  qb::testing::TempDir dir_;
  SimulatedArray sim_;
  std::unique_ptr<agent::testing::TestMount> mount_;
  std::string loop_disk_;
  std::unique_ptr<AgentChild> agent_;
  BackendSet backends_;
  std::unique_ptr<catalog::Catalog> catalog_;
  jobs::GuestSpec spec_;
  std::shared_ptr<link::GuestLink> link_;
  jobs::GuestRegistry registry_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<jobs::JobRunner> runner_;
};

TEST_F(PurityLoopGuestTest, JobFreezesOnlyTheLoopMountAndCutsOneArraySnapshot) {
  // Safety first: what would be frozen, from the agent's own inventory.
  auto inventory = io_.Run(link_->Inventory(Clock::now() + 20s));
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  auto plan = jobs::PlanFreeze(spec_, *inventory, false);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->freeze_volumes, std::vector<std::string>{mount_->mount_point()})
      << "the plan would freeze something else than the test mount; not running the job";

  { std::ofstream(mount_->mount_point() + "/before.txt") << "written before the job\n"; }
  runner_ = std::make_unique<jobs::JobRunner>(io_.executor(), pool_.get_executor(), backends_,
                                              *catalog_, registry_, jobs::JobRunnerOptions{});
  proto::SnapshotRequest request;
  request.vms = {"loopvm"};
  auto report = io_.Run(runner_->Snapshot(request));
  ASSERT_EQ(report.error_code, 0) << report.error;
  EXPECT_EQ(report.consistency, "application-consistent");
  ASSERT_EQ(report.snapshots.size(), 1u);
  EXPECT_EQ(report.snapshots[0].array_name, "loopvm-lun0." + SuffixForJobKey(report.job_id));
  EXPECT_TRUE(sim_.array.HasVolumeSnapshot(report.snapshots[0].array_name));

  // Thawed: a write + fsync on the mount completes.
  agent::testing::BackgroundWriter writer(mount_->mount_point(),
                                          mount_->mount_point() + "/after.txt");
  EXPECT_TRUE(writer.WaitDone(kWriteCompletes)) << "the file system stayed frozen";

  std::cout << "[ figures  ] loop-backed guest job (real agent, ext4 FIFREEZE, simulated array): "
            << "freeze window " << report.freeze_window_us << " us;";
  for (const auto& p : report.phases) std::cout << " " << p.phase << "=" << p.duration_us << "us";
  std::cout << "\n";
}

}  // namespace
}  // namespace qb::arrays::purity
