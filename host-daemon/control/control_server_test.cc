#include "host-daemon/control/control_server.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/thread_pool.hpp>
#include <iostream>
#include <sstream>

#include "common/guest_text.h"
#include "host-daemon/arrays/testing/fault_backend.h"
#include "host-daemon/cli/control_client.h"
#include "protocol/message_stream.h"
#include "tests/daemon/test_agent.h"
#include "tests/daemon/test_env.h"

namespace qb::control {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ClientSocket = asio::local::stream_protocol::socket;
using Client = proto::MessageStream<ClientSocket, proto::ControlReply, proto::ControlRequest>;

class ControlServerTest : public ::testing::Test {
 protected:
  // Overrides for the server's options, applied in SetUp (set by a test's constructor).
  ControlOptions server_options_;

  void SetUp() override {
    auto fake = std::make_unique<arrays::testing::FakeFaultBackend>("fake");
    ASSERT_TRUE(backends_.Add(std::move(fake)).ok());
    catalog_ = std::move(catalog::Catalog::Open(":memory:")).value();
    testing::TestAgentOptions o;
    o.socket_path = dir_ / "vm1.sock";
    o.inventory = testing::TestAgent::SimpleInventory("/data", "sda", "600a0b8001");
    Configure(o);
    agent_ = std::make_unique<testing::TestAgent>(o);
    link::LinkOptions lo;
    lo.guest_name = "vm1";
    lo.endpoint = *link::ParseEndpoint("unix:" + o.socket_path);
    jobs::Guest guest;
    guest.spec.name = "vm1";
    guest.spec.endpoint = "unix:" + o.socket_path;
    guest.spec.luns = {arrays::LunSpec{"fake", "/luns/vm1.raw", "600a0b8001"}};
    guest.link = link::GuestLink::Create(io_.executor(), lo);
    guest.link->Start();
    ASSERT_TRUE(registry_.Add(guest).ok());
    ASSERT_TRUE(io_.Run(guest.link->WaitConnected(Clock::now() + 10s)).ok());
    runner_ = std::make_unique<jobs::JobRunner>(io_.executor(), pool_.get_executor(), backends_,
                                                *catalog_, registry_, jobs::JobRunnerOptions{});
    ControlOptions co = server_options_;
    co.socket_path = dir_ / "control.sock";
    server_ = std::make_unique<ControlServer>(io_.executor(), *runner_, registry_, co);
    Status started = io_.Run(
        [](ControlServer* s) -> asio::awaitable<Status> { co_return s->Start(); }(server_.get()));
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override {
    registry_.StopAll();
    io_.Run([](ControlServer* s) -> asio::awaitable<int> {
      s->Stop();
      co_return 0;
    }(server_.get()));
    io_.Stop();
    pool_.join();
  }

  // Lets a test's fixture shape the agent before it starts.
  virtual void Configure(testing::TestAgentOptions&) {}

  // One request as quiescectl sends it (its own client): every failure comes back at once.
  Result<proto::ControlReply> AskAsCli(proto::ControlRequestBody body, proto::Page page = {}) {
    return cli::Ask(dir_ / "control.sock", proto::ControlRequest{42, 1, std::move(body), page},
                    60s);
  }

  // One request on a fresh connection, run on the test's io thread.
  proto::ControlReply Ask(proto::ControlRequestBody body, std::uint16_t major = 1) {
    return io_.Run([](std::string path, proto::ControlRequestBody body,
                      std::uint16_t major) -> asio::awaitable<proto::ControlReply> {
      ClientSocket socket(co_await asio::this_coro::executor);
      socket.connect(asio::local::stream_protocol::endpoint(path));
      Client client(std::move(socket));
      const proto::ControlRequest request{42, major, body};
      Status written = co_await client.Write(request);
      EXPECT_TRUE(written.ok());
      auto reply = co_await client.Read();
      if (!reply.ok()) co_return proto::ControlReply{0, proto::ControlError{999, "no reply"}};
      co_return std::move(reply).value();
    }(dir_ / "control.sock", std::move(body), major));
  }

  // Declared first so it is destroyed last: the links and timers below belong to its
  // io_context and must go before it does.
  testing::IoThread io_;
  testing::TempDir dir_;
  arrays::BackendSet backends_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<testing::TestAgent> agent_;
  jobs::GuestRegistry registry_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<jobs::JobRunner> runner_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlServerTest, SocketModeIs0660) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "control.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST_F(ControlServerTest, GuestsStatusSnapshotListDelete) {
  auto guests = Ask(proto::ListGuests{});
  EXPECT_EQ(guests.request_id, 42u);
  ASSERT_TRUE(std::holds_alternative<proto::GuestList>(guests.body));
  const auto& list = std::get<proto::GuestList>(guests.body).guests;
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "vm1");
  EXPECT_EQ(list[0].link_state, "connected");
  EXPECT_EQ(list[0].luns, std::vector<std::string>{"fake:/luns/vm1.raw"});

  auto status = Ask(proto::GuestStatusRequest{"vm1"});
  ASSERT_TRUE(std::holds_alternative<proto::GuestInfo>(status.body));
  EXPECT_FALSE(std::get<proto::GuestInfo>(status.body).frozen);

  proto::SnapshotRequest snap;
  snap.vms = {"vm1"};
  auto job = Ask(snap);
  ASSERT_TRUE(std::holds_alternative<proto::JobReport>(job.body));
  const auto report = std::get<proto::JobReport>(job.body);
  EXPECT_EQ(report.consistency, "application-consistent") << report.error;
  ASSERT_EQ(report.snapshots.size(), 1u);

  auto snaps = Ask(proto::ListSnapshots{"vm1"});
  ASSERT_TRUE(std::holds_alternative<proto::SnapshotList>(snaps.body));
  EXPECT_EQ(std::get<proto::SnapshotList>(snaps.body).snapshots.size(), 1u);

  auto jobs = Ask(proto::ListJobs{});
  ASSERT_TRUE(std::holds_alternative<proto::JobList>(jobs.body));
  EXPECT_EQ(std::get<proto::JobList>(jobs.body).jobs.size(), 1u);

  auto rollback = Ask(proto::RollbackRequest{"vm1", report.snapshots[0].snapshot_id});
  ASSERT_TRUE(std::holds_alternative<proto::ControlError>(rollback.body));
  EXPECT_EQ(std::get<proto::ControlError>(rollback.body).code,
            static_cast<std::uint16_t>(Code::kPermissionDenied));

  auto deleted = Ask(proto::DeleteSnapshot{report.snapshots[0].snapshot_id});
  ASSERT_TRUE(std::holds_alternative<proto::Done>(deleted.body));
  auto thaw = Ask(proto::ThawRequest{"vm1"});
  ASSERT_TRUE(std::holds_alternative<proto::Done>(thaw.body));
  EXPECT_EQ(std::get<proto::Done>(thaw.body).what, "vm1: not frozen");
}

TEST_F(ControlServerTest, BadRequestsGetControlErrors) {
  auto unknown = Ask(proto::GuestStatusRequest{"nope"});
  ASSERT_TRUE(std::holds_alternative<proto::ControlError>(unknown.body));
  EXPECT_EQ(std::get<proto::ControlError>(unknown.body).code,
            static_cast<std::uint16_t>(Code::kNotFound));
  auto version = Ask(proto::ListGuests{}, 7);
  ASSERT_TRUE(std::holds_alternative<proto::ControlError>(version.body));
  EXPECT_EQ(std::get<proto::ControlError>(version.body).code,
            static_cast<std::uint16_t>(Code::kVersionMismatch));
  auto expose = Ask(proto::ExposeRequest{"nope", ""});
  ASSERT_TRUE(std::holds_alternative<proto::ControlError>(expose.body));
  auto empty = Ask(proto::SnapshotRequest{});
  ASSERT_TRUE(std::holds_alternative<proto::JobReport>(empty.body));
  EXPECT_EQ(std::get<proto::JobReport>(empty.body).error_code,
            static_cast<std::uint16_t>(Code::kInvalidArgument));
}

TEST_F(ControlServerTest, GarbageFromAClientDoesNotHurtTheServer) {
  io_.Run([](std::string path) -> asio::awaitable<int> {
    ClientSocket socket(co_await asio::this_coro::executor);
    socket.connect(asio::local::stream_protocol::endpoint(path));
    Client client(std::move(socket));
    std::vector<std::uint8_t> junk(100000, 0xD1);
    co_await client.WriteRaw(junk);
    co_return 0;
  }(dir_ / "control.sock"));
  auto guests = Ask(proto::ListGuests{});
  EXPECT_TRUE(std::holds_alternative<proto::GuestList>(guests.body));
}

// Connects a client that sends nothing (it stays idle). Runs on the test's io thread.
std::shared_ptr<ClientSocket> Idle(testing::IoThread& io, const std::string& path) {
  return io.Run([](std::string path) -> asio::awaitable<std::shared_ptr<ClientSocket>> {
    auto socket = std::make_shared<ClientSocket>(co_await asio::this_coro::executor);
    socket->connect(asio::local::stream_protocol::endpoint(path));
    co_return socket;
  }(path));
}

// True once the server has closed `socket` (a read sees end of stream). Bounded by `limit`.
bool ClosedByServer(testing::IoThread& io, const std::shared_ptr<ClientSocket>& socket,
                    std::chrono::seconds limit) {
  return io.Run([](std::shared_ptr<ClientSocket> socket,
                   std::chrono::seconds limit) -> asio::awaitable<bool> {
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    timer.async_wait([socket](boost::system::error_code ec) {
      if (!ec) socket->cancel();
    });
    std::array<char, 64> buffer{};
    for (;;) {
      auto [ec, n] = co_await socket->async_read_some(asio::buffer(buffer),
                                                      asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::eof || ec == asio::error::connection_reset) {
        timer.cancel();
        co_return true;
      }
      if (ec) co_return false;  // cancelled by the timer: still open
      (void)n;
    }
  }(socket, limit));
}

class ControlServerIdleTest : public ControlServerTest {
 protected:
  ControlServerIdleTest() {
    server_options_.idle_timeout = 300ms;
    server_options_.max_sessions = 2;
  }
};

class ControlServerCapTest : public ControlServerTest {
 protected:
  ControlServerCapTest() { server_options_.max_sessions = 2; }
};

// A client that sends nothing is closed after the idle timeout (issue 11 item 7), so idle
// clients cannot hold the session slots for good.
TEST_F(ControlServerIdleTest, IdleClientsAreClosedAfterTheIdleTimeout) {
  const std::string path = dir_ / "control.sock";
  auto a = Idle(io_, path);
  auto b = Idle(io_, path);
  EXPECT_TRUE(ClosedByServer(io_, a, 20s));
  EXPECT_TRUE(ClosedByServer(io_, b, 20s));
  EXPECT_TRUE(testing::Eventually([&] { return server_->sessions() == 0; }));
  // The slots are free again: a real request gets its answer.
  auto guests = Ask(proto::ListGuests{});
  EXPECT_TRUE(std::holds_alternative<proto::GuestList>(guests.body));
}

// At the cap, a new client gets a "busy" ControlError for its request before the server closes
// it, not a bare close (which quiescectl reports as "no answer").
TEST_F(ControlServerCapTest, AtTheCapANewClientIsToldBusy) {
  const std::string path = dir_ / "control.sock";
  auto a = Idle(io_, path);
  auto b = Idle(io_, path);
  ASSERT_TRUE(testing::Eventually([&] { return server_->sessions() == 2; }));
  auto reply = Ask(proto::ListGuests{});
  ASSERT_TRUE(std::holds_alternative<proto::ControlError>(reply.body));
  const auto& error = std::get<proto::ControlError>(reply.body);
  EXPECT_EQ(error.code, static_cast<std::uint16_t>(Code::kBusy)) << error.message;
  EXPECT_NE(error.message.find("too many control clients"), std::string::npos) << error.message;
  EXPECT_EQ(reply.request_id, 42u);
}

// Stop() closes the open sessions, as its contract says: a connected idle client sees end of
// stream at once.
TEST_F(ControlServerTest, StopClosesOpenSessions) {
  auto a = Idle(io_, dir_ / "control.sock");
  ASSERT_TRUE(testing::Eventually([&] { return server_->sessions() == 1; }));
  io_.Run([](ControlServer* s) -> asio::awaitable<int> {
    s->Stop();
    co_return 0;
  }(server_.get()));
  EXPECT_TRUE(ClosedByServer(io_, a, 20s));
  EXPECT_TRUE(testing::Eventually([&] { return server_->sessions() == 0; }));
}

TEST_F(ControlServerTest, JobsAndSnapshotsArePaged) {
  proto::SnapshotRequest snap;
  snap.vms = {"vm1"};
  for (int i = 0; i < 3; ++i) {
    auto job = AskAsCli(snap);
    ASSERT_TRUE(job.ok()) << job.status().ToString();
  }
  auto first = AskAsCli(proto::ListJobs{}, proto::Page{2, 0});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(std::get<proto::JobList>(first->body).jobs.size(), 2u);
  EXPECT_TRUE(first->more);
  EXPECT_EQ(first->next_offset, 2u);
  auto second = AskAsCli(proto::ListJobs{}, proto::Page{2, first->next_offset});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(std::get<proto::JobList>(second->body).jobs.size(), 1u);
  EXPECT_FALSE(second->more);
  EXPECT_NE(std::get<proto::JobList>(second->body).jobs[0].job_id,
            std::get<proto::JobList>(first->body).jobs[1].job_id);
  auto all = AskAsCli(proto::ListJobs{});  // a 1.0 client: the default page
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(std::get<proto::JobList>(all->body).jobs.size(), 3u);
  EXPECT_FALSE(all->more);

  auto snaps = AskAsCli(proto::ListSnapshots{"vm1"}, proto::Page{1, 1});
  ASSERT_TRUE(snaps.ok());
  EXPECT_EQ(std::get<proto::SnapshotList>(snaps->body).snapshots.size(), 1u);
  EXPECT_TRUE(snaps->more);
  EXPECT_EQ(snaps->next_offset, 2u);
}

// Issue 11 item 2: a guest reporting ~2,100 writers in Frozen and again in Thawed pushed the
// job reply past the control codec's limits (quiescectl waited 82 s for "no answer") and broke
// `jobs` for every VM. The daemon keeps a bounded part and counts the rest.
class HugeWriterListsTest : public ControlServerTest {
  void Configure(testing::TestAgentOptions& o) override {
    for (int i = 0; i < 2100; ++i) {
      proto::WriterResult w;
      // Both messages fit in a frame (~300 KB each); together they are over the codec's
      // 4,096 list elements, and their text near 1 MiB.
      w.name = "hook-with-a-rather-long-name-" + std::to_string(i) + std::string(60, 'x');
      w.ok = true;
      w.state = "exit 0";
      w.phase = "freeze";
      o.writers.push_back(w);
      w.phase = "thaw";
      o.thaw_writers.push_back(w);
    }
  }
};

TEST_F(HugeWriterListsTest, TheJobReplyIsBoundedAndJobsStillWorks) {
  proto::SnapshotRequest snap;
  snap.vms = {"vm1"};
  auto job = AskAsCli(snap);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  const auto& report = std::get<proto::JobReport>(job->body);
  EXPECT_EQ(report.consistency, "application-consistent") << report.error;
  EXPECT_EQ(report.writer_details.size(), report.writers.size());
  EXPECT_LE(report.writer_details.size(), proto::kMaxJobWriters);
  EXPECT_EQ(report.writer_details.size() + report.writers_truncated, 4200u);
  EXPECT_GT(report.writers_truncated, 0u);
  const auto job_bytes = proto::EncodeControlReply(*job).size();
  EXPECT_LE(job_bytes, proto::kControlReplyByteBudget);
  std::cout << "job reply: " << job_bytes << " bytes, " << report.writer_details.size()
            << " writers kept, " << report.writers_truncated << " truncated\n";

  for (int i = 0; i < 4; ++i) ASSERT_TRUE(AskAsCli(snap).ok());
  auto jobs = AskAsCli(proto::ListJobs{});
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  const auto& list = std::get<proto::JobList>(jobs->body).jobs;
  ASSERT_EQ(list.size(), 5u);
  EXPECT_EQ(list[4].writers_truncated, report.writers_truncated);  // kept in the catalog
  EXPECT_EQ(list[4].writer_details, report.writer_details);
  EXPECT_LE(proto::EncodeControlReply(*jobs).size(), proto::kControlReplyByteBudget);
  std::cout << "jobs reply: " << proto::EncodeControlReply(*jobs).size() << " bytes\n";
}

// Issue 11 item 3: guest texts with terminal escapes, forged lines, invalid UTF-8 and 15 KB
// reach the daemon's log only escaped, valid and capped.
class HostileGuestTextTest : public ControlServerTest {
 protected:
  void SetUp() override {
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>("test", sink_);
    logger->set_level(spdlog::level::info);
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
    ControlServerTest::SetUp();
  }
  void TearDown() override {
    ControlServerTest::TearDown();
    spdlog::set_default_logger(previous_);
  }
  void Configure(testing::TestAgentOptions& o) override {
    proto::HelloReply hello;
    hello.agent_version = Hostile();
    hello.os = proto::OsInfo{proto::OsFamily::kLinux, Hostile(), Hostile(), Hostile()};
    hello.stale_freeze_cleared.job_id = "j\x1b[2J\r\nsnapshot X application-consistent";  // <= 64 B
    o.hello = hello;
    o.refuse_message = Hostile();
  }
  static std::string Hostile() {
    return "1.0\x1b]0;owned\x07\r\nsnapshot X application-consistent\n\xff\xfe\xe2\x80\xae" +
           std::string(15 * 1024, 'A');  // under the agent codec's 16 KiB per text
  }
  std::ostringstream log_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(HostileGuestTextTest, TheDaemonLogGetsEscapedBoundedLines) {
  agent_->SetBehavior(testing::AgentBehavior::kRefuseFreeze);
  proto::SnapshotRequest snap;
  snap.vms = {"vm1"};
  auto job = AskAsCli(snap);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  // The reply keeps the text (valid UTF-8; quiescectl escapes it when it shows it).
  const auto& report = std::get<proto::JobReport>(job->body);
  EXPECT_TRUE(IsValidUtf8(report.error));
  // A guest list stays small whatever the agents say: guest texts are cut.
  auto guests = AskAsCli(proto::ListGuests{});
  ASSERT_TRUE(guests.ok()) << guests.status().ToString();
  const auto& g = std::get<proto::GuestList>(guests->body).guests.at(0);
  EXPECT_LE(g.agent_version.size(), proto::kMaxGuestFieldBytes);
  EXPECT_LE(g.os_name.size(), proto::kMaxGuestFieldBytes);
  EXPECT_TRUE(IsValidUtf8(g.agent_version));
  spdlog::default_logger()->flush();
  const std::string log = log_.str();
  EXPECT_NE(log.find("connected to 1.0\\x1B]0;owned"), std::string::npos) << log.substr(0, 300);
  std::istringstream lines(log);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    ++count;
    EXPECT_NE(line.rfind("snapshot X", 0), 0u) << "a forged line: " << line.substr(0, 200);
    EXPECT_EQ(line.find('\x1b'), std::string::npos);
    EXPECT_EQ(line.find('\r'), std::string::npos);
    EXPECT_TRUE(IsValidUtf8(line));
    EXPECT_LT(line.size(), 2 * kGuestTextMaxBytes + 512);
  }
  EXPECT_GE(count, 3);
}

}  // namespace
}  // namespace qb::control
