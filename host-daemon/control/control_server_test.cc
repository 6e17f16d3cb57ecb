#include "host-daemon/control/control_server.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/thread_pool.hpp>

#include "host-daemon/arrays/testing/fault_backend.h"
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

}  // namespace
}  // namespace qb::control
