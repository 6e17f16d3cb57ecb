// The real quiesce-agent binary in a child process, driven over its unix socket with the
// daemon's qb::proto::AgentClient: protocol round trip, kill -9 and SIGSTOP while frozen.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <fstream>
#include <optional>
#include <thread>

#include "guest-agent/linux/fs_freezer.h"
#include "guest-agent/linux/testing/loop_fs.h"
#include "guest-agent/linux/testing/run_coro.h"
#include "protocol/frame.h"
#include "protocol/message_stream.h"

namespace qb::agent {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Socket = asio::local::stream_protocol::socket;
using Client = proto::AgentClient<Socket>;
using testing::BackgroundWriter;
using testing::RunCoro;
using testing::TempDir;
using testing::TestMount;

constexpr auto kRequest = 30s;  // per request: generous, the machine is shared
constexpr auto kAgentStarts = 20s;
constexpr auto kWriteCompletes = 20s;
constexpr auto kStaysBlocked = 500ms;

extern "C" char** environ;

// One quiesce-agent child process; killed (by pid) and reaped on destruction.
class AgentProcess {
 public:
  AgentProcess(const std::string& dir) : dir_(dir), socket_(dir + "/agent.sock") {}
  ~AgentProcess() { Stop(); }

  bool Start() {
    ::unlink(socket_.c_str());
    std::vector<std::string> args = {QB_AGENT_BINARY, "--config",    dir_ + "/agent.toml",
                                     "--unix",        socket_,       "--no-virtio-serial",
                                     "--run-dir",     dir_ + "/run", "--hooks-dir",
                                     dir_ + "/hooks", "--foreground"};
    std::ofstream(dir_ + "/agent.toml") << "[log]\nlevel = \"debug\"\n";
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    std::string log = dir_ + "/agent.log";
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) return false;
    auto deadline = Clock::now() + kAgentStarts;
    while (Clock::now() < deadline) {
      if (::access(socket_.c_str(), F_OK) == 0) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  void Signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  const std::string& socket_path() const { return socket_; }

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

class AgentProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
    ::mkdir((dir_.path() + "/hooks").c_str(), 0755);
    mount_ = std::make_unique<TestMount>(dir_.path(), "fs", "ext4");
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    agent_ = std::make_unique<AgentProcess>(dir_.path());
    ASSERT_TRUE(agent_->Start());
  }
  void TearDown() override {
    if (client_) client_->Close();
    client_.reset();
    agent_.reset();
    mount_.reset();
  }

  std::shared_ptr<Client> Connect() {
    Socket socket(io_);
    socket.connect(asio::local::stream_protocol::endpoint(agent_->socket_path()));
    auto client = std::make_shared<Client>(std::move(socket));
    client->Start();
    return client;
  }
  proto::AgentBody Request(Client& client, proto::AgentBody body) {
    auto reply = RunCoro(io_, client.Request(std::move(body), kRequest));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return proto::ErrorReply{proto::ErrorCode::kUnknown, "no reply"};
    return reply->body;
  }
  proto::HelloReply Hello(Client& client, std::uint64_t nonce) {
    client.SetNonce(nonce);
    auto body = Request(client, proto::Hello{});
    EXPECT_TRUE(std::holds_alternative<proto::HelloReply>(body));
    return std::holds_alternative<proto::HelloReply>(body) ? std::get<proto::HelloReply>(body)
                                                           : proto::HelloReply{};
  }
  proto::Freeze FreezeRequest(std::uint32_t lease_ms) {
    proto::Freeze freeze;
    freeze.job_id = "job-p";
    freeze.volumes = {mount_->mount_point()};
    freeze.lease_ms = lease_ms;
    return freeze;
  }
  bool IsFrozen() {
    // FITHAW answers "was frozen"; refreeze at once to keep the state when it was.
    auto outcome = ThawMountPoint(mount_->mount_point());
    if (outcome.was_frozen) {
      auto set = FsFreezeSet::Open({mount_->mount_point()});
      if (set.ok()) (void)FreezeFd(set->fds()[0], mount_->mount_point());
    }
    return outcome.was_frozen;
  }

  TempDir dir_;
  asio::io_context io_;
  std::unique_ptr<TestMount> mount_;
  std::unique_ptr<AgentProcess> agent_;
  std::shared_ptr<Client> client_;
};

TEST_F(AgentProcessTest, FullRoundTripOverTheUnixSocket) {
  client_ = Connect();
  // Garbage before the Hello is skipped by the agent's frame decoder.
  std::vector<std::uint8_t> garbage = {0x00, 0x51, 0x42, 0xff, 0x13, 0x37, 'j', 'u', 'n', 'k'};
  ASSERT_TRUE(RunCoro(io_, client_->channel().WriteRaw(garbage)).ok());

  // A Hello of another major version is refused.
  client_->SetNonce(77);
  proto::Hello future;
  future.protocol_major = proto::kAgentProtocolMajor + 1;
  auto refused = Request(*client_, future);
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(refused));
  EXPECT_EQ(std::get<proto::ErrorReply>(refused).code, proto::ErrorCode::kVersionMismatch);

  // A newer minor is fine.
  client_->SetNonce(1234);
  proto::Hello newer;
  newer.protocol_minor = proto::kAgentProtocolMinor + 5;
  auto hello_body = Request(*client_, newer);
  ASSERT_TRUE(std::holds_alternative<proto::HelloReply>(hello_body));
  const auto& hello = std::get<proto::HelloReply>(hello_body);
  EXPECT_EQ(hello.os.family, proto::OsFamily::kLinux);
  EXPECT_FALSE(hello.freeze_state.frozen);
  EXPECT_TRUE(hello.stale_freeze_cleared.job_id.empty());

  auto inventory = Request(*client_, proto::InventoryRequest{});
  ASSERT_TRUE(std::holds_alternative<proto::Inventory>(inventory));
  bool listed = false;
  for (const auto& v : std::get<proto::Inventory>(inventory).volumes) {
    if (v.name == mount_->mount_point()) {
      listed = v.fs_type == "ext4" && v.freezable && v.size_bytes > 0;
      EXPECT_FALSE(v.disk_names.empty()) << "loop device not resolved to a disk";
    }
  }
  EXPECT_TRUE(listed) << "the test mount is missing from the inventory";

  auto frozen = Request(*client_, FreezeRequest(30000));
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(frozen))
      << std::get<proto::ErrorReply>(frozen).message;
  EXPECT_EQ(std::get<proto::Frozen>(frozen).frozen_volumes,
            std::vector<std::string>{mount_->mount_point()});

  auto status = Request(*client_, proto::StatusRequest{});
  ASSERT_TRUE(std::holds_alternative<proto::AgentStatus>(status));
  EXPECT_TRUE(std::get<proto::AgentStatus>(status).state.frozen);
  EXPECT_EQ(std::get<proto::AgentStatus>(status).state.job_id, "job-p");

  auto busy = Request(*client_, proto::InventoryRequest{});
  ASSERT_TRUE(std::holds_alternative<proto::ErrorReply>(busy));
  EXPECT_EQ(std::get<proto::ErrorReply>(busy).code, proto::ErrorCode::kBusy);
  EXPECT_TRUE(std::holds_alternative<proto::Pong>(Request(*client_, proto::Ping{})));

  // A second daemon opens a session during the freeze and learns about it.
  auto second = Connect();
  auto second_hello = Hello(*second, 999);
  EXPECT_TRUE(second_hello.freeze_state.frozen);
  EXPECT_EQ(second_hello.freeze_state.job_id, "job-p");
  EXPECT_GT(second_hello.freeze_state.lease_left_ms, 0u);
  second->Close();

  auto thawed = Request(*client_, proto::Thaw{"job-p", true});
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(thawed));
  EXPECT_TRUE(std::get<proto::Thawed>(thawed).held_whole_window)
      << std::get<proto::Thawed>(thawed).not_held_reason;
  EXPECT_FALSE(IsFrozen());
}

TEST_F(AgentProcessTest, RequestsOfAnotherSessionAreDropped) {
  client_ = Connect();
  Hello(*client_, 5);
  client_->SetNonce(6);  // not the session's nonce: the agent must not answer
  auto reply = RunCoro(io_, client_->Request(proto::StatusRequest{}, 500ms));
  EXPECT_EQ(reply.status().code(), Code::kTimeout);
  // Reply-type messages from the host are ignored, not answered.
  client_->SetNonce(5);
  auto ignored = RunCoro(io_, client_->Request(proto::Pong{}, 500ms));
  EXPECT_EQ(ignored.status().code(), Code::kTimeout);
  EXPECT_TRUE(
      std::holds_alternative<proto::AgentStatus>(Request(*client_, proto::StatusRequest{})));
}

TEST_F(AgentProcessTest, KillNineWhileFrozenThawsAtOnceAndTheRestartReportsIt) {
  client_ = Connect();
  Hello(*client_, 42);
  const std::uint32_t lease_ms = 60000;  // the guard must not wait for it
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(Request(*client_, FreezeRequest(lease_ms))));
  BackgroundWriter writer(mount_->mount_point(), mount_->mount_point() + "/f");
  EXPECT_FALSE(writer.WaitDone(kStaysBlocked));
  auto killed_at = Clock::now();
  agent_->Stop();  // SIGKILL
  EXPECT_TRUE(writer.WaitDone(kWriteCompletes)) << "the guard did not thaw after kill -9";
  EXPECT_LT(Clock::now() - killed_at, std::chrono::milliseconds(lease_ms))
      << "thawed only at lease expiry";
  client_->Close();
  client_.reset();

  ASSERT_TRUE(agent_->Start());
  client_ = Connect();
  auto hello = Hello(*client_, 43);
  EXPECT_EQ(hello.stale_freeze_cleared.job_id, "job-p");
  EXPECT_EQ(hello.stale_freeze_cleared.volumes, std::vector<std::string>{mount_->mount_point()});
  EXPECT_FALSE(hello.freeze_state.frozen);
}

TEST_F(AgentProcessTest, SigstopWhileFrozenThawsAtLeaseExpiry) {
  client_ = Connect();
  Hello(*client_, 7);
  const auto lease = 1500ms;
  auto sent = Clock::now();
  auto frozen = Request(*client_, FreezeRequest(static_cast<std::uint32_t>(lease.count())));
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(frozen));
  agent_->Signal(SIGSTOP);
  BackgroundWriter writer(mount_->mount_point(), mount_->mount_point() + "/f");
  EXPECT_TRUE(writer.WaitDone(lease + kWriteCompletes)) << "guard did not thaw a stopped agent";
  EXPECT_GE(Clock::now() - sent, lease) << "thawed before the lease ran out";
  agent_->Signal(SIGCONT);

  auto thawed = Request(*client_, proto::Thaw{"job-p", true});
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(thawed))
      << std::get<proto::ErrorReply>(thawed).message;
  const auto& verdict = std::get<proto::Thawed>(thawed);
  EXPECT_FALSE(verdict.held_whole_window);
  EXPECT_TRUE(verdict.lease_expired);
}

TEST_F(AgentProcessTest, StatusPingAndThawAreAnsweredWhileAFreezeIsInProgress) {
  // A freeze hook that waits for the test's go-ahead keeps the Freeze in progress (on the
  // agent's worker thread) for as long as the test needs; the io thread must stay responsive.
  std::string go = dir_.path() + "/go";
  std::string hook = dir_.path() + "/hooks/10-wait";
  std::ofstream(hook) << "#!/bin/sh\n[ \"$1\" = thaw ] && exit 0\n"
                      << "i=0; while [ ! -e '" << go << "' ] && [ $i -lt 200 ]; do sleep 0.1; "
                      << "i=$((i+1)); done\n";
  ::chmod(hook.c_str(), 0755);
  client_ = Connect();
  Hello(*client_, 11);
  std::optional<Result<proto::AgentMessage>> freeze_reply;
  const proto::AgentBody freeze_body = FreezeRequest(30000);
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        auto reply = co_await client_->Request(freeze_body, kRequest);
        freeze_reply.emplace(std::move(reply));
      },
      asio::detached);
  auto status = Request(*client_, proto::StatusRequest{});
  ASSERT_TRUE(std::holds_alternative<proto::AgentStatus>(status));
  EXPECT_TRUE(std::get<proto::AgentStatus>(status).state.frozen) << "freeze in progress";
  EXPECT_EQ(std::get<proto::AgentStatus>(status).state.job_id, "job-p");
  EXPECT_FALSE(freeze_reply.has_value()) << "the hook should still be waiting";
  EXPECT_TRUE(std::holds_alternative<proto::Pong>(Request(*client_, proto::Ping{})));
  // The daemon gives up and thaws while the freeze is still running: the Thaw waits for it
  // and thaws what it froze.
  std::optional<Result<proto::AgentMessage>> thaw_reply;
  const proto::AgentBody thaw_body = proto::Thaw{"job-p", false};
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        auto reply = co_await client_->Request(thaw_body, kRequest);
        thaw_reply.emplace(std::move(reply));
      },
      asio::detached);
  std::ofstream(go) << "go\n";
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return freeze_reply && thaw_reply; }, kRequest));
  ASSERT_TRUE(freeze_reply->ok() && thaw_reply->ok());
  EXPECT_TRUE(std::holds_alternative<proto::Frozen>((*freeze_reply)->body));
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>((*thaw_reply)->body));
  EXPECT_FALSE(std::get<proto::Thawed>((*thaw_reply)->body).already_thawed);
  EXPECT_FALSE(IsFrozen());
}

// Freeze hooks that append "PHASE NAME ok=QUIESCE_SNAPSHOT_OK recovery=QUIESCE_RECOVERY" to
// hooks.log; `waiting` (if any) waits in its freeze for the file "go" (up to 20 s).
class AgentHookRecoveryTest : public AgentProcessTest {
 protected:
  void WriteHooks(const std::vector<std::string>& names, const std::string& waiting = "") {
    for (const auto& name : names) {
      std::string path = dir_.path() + "/hooks/" + name;
      std::ofstream hook(path);
      hook << "#!/bin/sh\necho \"$1 " << name
           << " ok=$QUIESCE_SNAPSHOT_OK recovery=$QUIESCE_RECOVERY\" >> '" << log_path() << "'\n";
      if (name == waiting) {
        hook << "[ \"$1\" = freeze ] || exit 0\ni=0; while [ ! -e '" << dir_.path()
             << "/go' ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done\n";
      }
      hook.close();
      ::chmod(path.c_str(), 0755);
    }
  }
  std::string log_path() const { return dir_.path() + "/hooks.log"; }
  std::vector<std::string> HookLog() const {
    std::vector<std::string> lines;
    std::ifstream in(log_path());
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }
  // Restarts the agent with QB_CRASH_POINT=`point` ("" = none).
  void RestartWithCrashPoint(const std::string& point) {
    if (client_) client_->Close();
    client_.reset();
    agent_->Stop();
    if (point.empty())
      ::unsetenv("QB_CRASH_POINT");
    else
      ::setenv("QB_CRASH_POINT", point.c_str(), 1);
    bool started = agent_->Start();
    ::unsetenv("QB_CRASH_POINT");
    ASSERT_TRUE(started);
  }
  // Sends a Freeze the agent never answers (it dies at its crash point).
  void FreezeAndDie() {
    client_ = Connect();
    Hello(*client_, 21);
    auto reply = RunCoro(io_, client_->Request(FreezeRequest(60000), kRequest));
    EXPECT_FALSE(reply.ok()) << "the agent should have died at its crash point";
    client_->Close();
    client_.reset();
  }
};

TEST_F(AgentHookRecoveryTest, KillAfterTheFirstFreezeHookThawsOnlyThatHookOnRestart) {
  WriteHooks({"10-a", "20-b", "30-c"});
  RestartWithCrashPoint("agent.hooks.after-first-freeze");
  FreezeAndDie();
  ASSERT_EQ(HookLog(), (std::vector<std::string>{"freeze 10-a ok= recovery="}));
  RestartWithCrashPoint("");  // recovery runs before the agent serves
  EXPECT_EQ(HookLog(),
            (std::vector<std::string>{"freeze 10-a ok= recovery=", "thaw 10-a ok=0 recovery=1"}));
  EXPECT_FALSE(IsFrozen());
}

TEST_F(AgentHookRecoveryTest, KillDuringAFreezeHookThawsEveryHookWhoseFreezeStarted) {
  WriteHooks({"10-a", "20-b", "30-c"}, "20-b");
  client_ = Connect();
  Hello(*client_, 22);
  const proto::AgentBody freeze_body = FreezeRequest(60000);
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> { (void)co_await client_->Request(freeze_body, kRequest); },
      asio::detached);
  ASSERT_TRUE(testing::RunUntil(
      io_, [&] { return HookLog().size() == 2; }, kRequest));
  agent_->Stop();                                // kill -9 while 20-b's freeze runs
  std::ofstream(dir_.path() + "/go") << "go\n";  // let the orphaned hook end
  client_->Close();
  client_.reset();
  RestartWithCrashPoint("");
  EXPECT_EQ(HookLog(),
            (std::vector<std::string>{"freeze 10-a ok= recovery=", "freeze 20-b ok= recovery=",
                                      "thaw 20-b ok=0 recovery=1", "thaw 10-a ok=0 recovery=1"}));
  EXPECT_FALSE(IsFrozen());
}

TEST_F(AgentHookRecoveryTest, KillWhileFrozenThawsTheFileSystemsThenEveryHookInReverse) {
  WriteHooks({"10-a", "20-b", "30-c"});
  RestartWithCrashPoint("agent.after-freeze");
  FreezeAndDie();
  RestartWithCrashPoint("");
  EXPECT_EQ(HookLog(),
            (std::vector<std::string>{"freeze 10-a ok= recovery=", "freeze 20-b ok= recovery=",
                                      "freeze 30-c ok= recovery=", "thaw 30-c ok=0 recovery=1",
                                      "thaw 20-b ok=0 recovery=1", "thaw 10-a ok=0 recovery=1"}));
  EXPECT_FALSE(IsFrozen());
  client_ = Connect();
  auto hello = Hello(*client_, 23);
  EXPECT_EQ(hello.stale_freeze_cleared.job_id, "job-p");
  // A normal job afterwards: its thaw hooks carry no recovery flag.
  ASSERT_TRUE(std::holds_alternative<proto::Frozen>(Request(*client_, FreezeRequest(30000))));
  ASSERT_TRUE(std::holds_alternative<proto::Thawed>(Request(*client_, proto::Thaw{"job-p", true})));
  auto log = HookLog();
  ASSERT_EQ(log.size(), 12u);
  EXPECT_EQ(log[9], "thaw 30-c ok=1 recovery=");
}

TEST_F(AgentProcessTest, ThawAllThawsWhatTheRecordLists) {
  agent_->Stop();
  // A dead agent's leftovers whose guard also died: frozen, with a crash record.
  ASSERT_EQ(testing::Shell("fsfreeze --freeze '" + mount_->mount_point() + "'"), 0);
  ::mkdir((dir_.path() + "/run").c_str(), 0700);
  std::ofstream(dir_.path() + "/run/freeze-record")
      << "quiesce-agent freeze record 1\njob lost\nmount " << mount_->mount_point() << "\n";
  std::string out = dir_.path() + "/thaw-all.out";
  ASSERT_EQ(testing::Shell(std::string(QB_AGENT_BINARY) +
                           " --config /nonexistent.toml"
                           " --thaw-all --run-dir '" +
                           dir_.path() + "/run' > '" + out + "'"),
            2)
      << "a missing --config file must be an error";
  ASSERT_EQ(testing::Shell(std::string(QB_AGENT_BINARY) + " --thaw-all --run-dir '" + dir_.path() +
                           "/run' > '" + out + "'"),
            0);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, mount_->mount_point() + ": thawed");
  EXPECT_FALSE(IsFrozen());
  EXPECT_NE(::access((dir_.path() + "/run/freeze-record").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace qb::agent
