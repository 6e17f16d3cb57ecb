#include "host-daemon/link/guest_link.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "protocol/frame.h"
#include "tests/daemon/test_agent.h"
#include "tests/daemon/test_env.h"

namespace qb::link {
namespace {

using namespace std::chrono_literals;
using testing::AgentBehavior;
using testing::TestAgent;

// An "agent" that sends fixed bytes on every connection: once, or again and again (a flood)
// until the daemon closes the connection. It reads nothing and never answers properly.
class RawAgent {
 public:
  RawAgent(const std::string& path, std::vector<std::uint8_t> bytes, bool repeat)
      : bytes_(std::move(bytes)), repeat_(repeat) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    path_ = path;
    thread_ = std::thread([this] { Serve(); });
  }
  ~RawAgent() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
    ::unlink(path_.c_str());
  }
  int connections() const { return connections_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 20) <= 0) continue;
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++connections_;
      do {
        std::size_t sent = 0;
        while (!stop_ && sent < bytes_.size()) {
          pollfd out{fd, POLLOUT, 0};
          if (::poll(&out, 1, 20) <= 0) continue;
          const ssize_t n =
              ::send(fd, bytes_.data() + sent, bytes_.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n < 0 && errno != EAGAIN && errno != EINTR) break;
          if (n > 0) sent += static_cast<std::size_t>(n);
        }
        if (sent < bytes_.size()) break;  // the daemon closed the connection
      } while (repeat_ && !stop_);
      // Once: keep the connection open (silent) until the daemon gives up on it.
      while (!repeat_ && !stop_) {
        pollfd in{fd, POLLIN, 0};
        if (::poll(&in, 1, 20) <= 0) continue;
        char sink[4096];
        if (::recv(fd, sink, sizeof sink, 0) <= 0) break;
      }
      ::close(fd);
    }
  }

  std::vector<std::uint8_t> bytes_;
  bool repeat_;
  std::string path_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

class GuestLinkTest : public ::testing::Test {
 protected:
  std::unique_ptr<TestAgent> MakeAgent(const std::string& name, AgentBehavior behavior) {
    testing::TestAgentOptions o;
    o.socket_path = dir_ / (name + ".sock");
    o.behavior = behavior;
    o.inventory = TestAgent::SimpleInventory("/data", "sda", "600a0b80");
    o.slow_frozen_delay = 3s;
    return std::make_unique<TestAgent>(o);
  }
  std::shared_ptr<GuestLink> MakeLink(const std::string& name,
                                      const std::function<void(LinkOptions&)>& adjust = {}) {
    LinkOptions o;
    o.guest_name = name;
    o.endpoint = *ParseEndpoint("unix:" + (dir_ / (name + ".sock")));
    o.hello_timeout = 500ms;
    o.request_timeout = 2s;
    o.heartbeat_interval = 50ms;
    o.backoff_min = 10ms;
    o.backoff_max = 100ms;
    if (adjust) adjust(o);
    auto link = GuestLink::Create(io_.executor(), o);
    links_.push_back(link);
    link->Start();
    return link;
  }
  void TearDown() override {
    for (auto& l : links_) l->Stop();
    io_.Stop();
  }
  Status WaitConnected(const std::shared_ptr<GuestLink>& link, std::chrono::milliseconds t = 5s) {
    return io_.Run(link->WaitConnected(Clock::now() + t));
  }
  proto::Freeze FreezeRequest(const std::string& job) {
    proto::Freeze f;
    f.job_id = job;
    f.volumes = {"/data"};
    f.lease_ms = 5000;
    return f;
  }

  testing::TempDir dir_;
  testing::IoThread io_;
  std::vector<std::shared_ptr<GuestLink>> links_;
};

TEST_F(GuestLinkTest, ConnectsSaysHelloAndFetchesInventory) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());
  auto info = link->Info();
  EXPECT_EQ(info.state, LinkState::kConnected);
  ASSERT_TRUE(info.hello.has_value());
  EXPECT_EQ(info.hello->agent_version, "test-agent (test double)");
  ASSERT_TRUE(info.inventory.has_value());
  EXPECT_EQ(info.inventory->volumes.size(), 2u);
  EXPECT_EQ(agent->hellos(), 1);
}

TEST_F(GuestLinkTest, FreezeThenThawRoundTrip) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());
  auto frozen = io_.Run(link->Freeze(FreezeRequest("job-a"), Clock::now() + 5s));
  ASSERT_TRUE(frozen.ok()) << frozen.status().ToString();
  EXPECT_EQ(frozen->frozen_volumes, std::vector<std::string>{"/data"});
  EXPECT_TRUE(agent->frozen());
  EXPECT_TRUE(link->Info().freeze_state->frozen);
  auto thawed = io_.Run(link->Thaw(proto::Thaw{"job-a", true}, {"/data"}, Clock::now() + 5s));
  ASSERT_TRUE(thawed.ok()) << thawed.status().ToString();
  EXPECT_TRUE(thawed->held_whole_window);
  EXPECT_FALSE(agent->frozen());
  auto status = io_.Run(link->Status(Clock::now() + 5s));
  ASSERT_TRUE(status.ok());
  EXPECT_FALSE(status->state.frozen);
}

TEST_F(GuestLinkTest, ReconnectsAfterTheAgentDropsTheSession) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());
  agent->DropSessions();
  ASSERT_TRUE(testing::Eventually([&] { return link->Info().sessions >= 2; }));
  EXPECT_TRUE(WaitConnected(link).ok());
  EXPECT_GE(agent->hellos(), 2);
}

TEST_F(GuestLinkTest, ReconnectsWhenTheAgentStartsLate) {
  auto link = MakeLink("vm1");
  ASSERT_TRUE(testing::Eventually([&] { return link->Info().state == LinkState::kDown; }));
  EXPECT_FALSE(link->Info().last_error.empty());
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  EXPECT_TRUE(WaitConnected(link).ok());
}

TEST_F(GuestLinkTest, RequestsFailFastWithoutASession) {
  auto link = MakeLink("nobody");
  auto frozen = io_.Run(link->Freeze(FreezeRequest("job-a"), Clock::now() + 5s));
  EXPECT_EQ(frozen.status().code(), Code::kGuestUnreachable);
}

// Hostile guests at session open: none of them may reach "connected", crash the daemon, or
// hold up a well-behaved guest served by the same io thread.
TEST_F(GuestLinkTest, HostileGuestsNeverConnectAndDoNotDelayOthers) {
  const std::vector<AgentBehavior> hostile = {
      AgentBehavior::kGarbage, AgentBehavior::kOversizeFrames, AgentBehavior::kSilent,
      AgentBehavior::kStaleNonce, AgentBehavior::kFlood};
  std::vector<std::unique_ptr<TestAgent>> agents;
  std::vector<std::shared_ptr<GuestLink>> hostile_links;
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    auto name = "bad" + std::to_string(i);
    agents.push_back(MakeAgent(name, hostile[i]));
    hostile_links.push_back(MakeLink(name));
  }
  auto good_agent = MakeAgent("good", AgentBehavior::kNormal);
  auto good = MakeLink("good");
  ASSERT_TRUE(WaitConnected(good).ok());
  for (int round = 0; round < 3; ++round) {
    auto job = "job-" + std::to_string(round);
    auto frozen = io_.Run(good->Freeze(FreezeRequest(job), Clock::now() + 5s));
    ASSERT_TRUE(frozen.ok()) << frozen.status().ToString();
    auto thawed = io_.Run(good->Thaw(proto::Thaw{job, true}, {"/data"}, Clock::now() + 5s));
    ASSERT_TRUE(thawed.ok()) << thawed.status().ToString();
  }
  // Every hostile agent was talked to (at least once) and none ever counts as connected.
  for (std::size_t i = 0; i < hostile.size(); ++i) {
    EXPECT_TRUE(testing::Eventually([&] { return agents[i]->hellos() >= 2; }))
        << "behaviour " << i << " was not retried";
    auto info = hostile_links[i]->Info();
    EXPECT_NE(info.state, LinkState::kConnected) << "behaviour " << i;
    EXPECT_EQ(info.sessions, 0u) << "behaviour " << i;
    EXPECT_FALSE(info.last_error.empty()) << "behaviour " << i;
  }
}

TEST_F(GuestLinkTest, LyingFreezeRepliesAreRejected) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());

  agent->SetBehavior(AgentBehavior::kWrongJobId);
  auto wrong = io_.Run(link->Freeze(FreezeRequest("job-w"), Clock::now() + 5s));
  EXPECT_EQ(wrong.status().code(), Code::kProtocolError) << wrong.status().ToString();
  agent->SetBehavior(AgentBehavior::kNormal);
  ASSERT_TRUE(io_.Run(link->Thaw(proto::Thaw{"job-w", false}, {}, Clock::now() + 5s)).ok());

  agent->SetBehavior(AgentBehavior::kExtraVolume);
  auto extra = io_.Run(link->Freeze(FreezeRequest("job-x"), Clock::now() + 5s));
  EXPECT_EQ(extra.status().code(), Code::kProtocolError) << extra.status().ToString();
  agent->SetBehavior(AgentBehavior::kNormal);
  ASSERT_TRUE(io_.Run(link->Thaw(proto::Thaw{"job-x", false}, {}, Clock::now() + 5s)).ok());

  agent->SetBehavior(AgentBehavior::kRefuseFreeze);
  auto refused = io_.Run(link->Freeze(FreezeRequest("job-r"), Clock::now() + 5s));
  EXPECT_EQ(refused.status().code(), Code::kIoError) << refused.status().ToString();
  EXPECT_FALSE(agent->frozen());
}

TEST_F(GuestLinkTest, SilentFreezeTimesOutAtTheDeadlineWithoutDelayingAnotherGuest) {
  auto slow_agent = MakeAgent("slow", AgentBehavior::kNormal);
  auto fast_agent = MakeAgent("fast", AgentBehavior::kNormal);
  auto slow = MakeLink("slow");
  auto fast = MakeLink("fast");
  ASSERT_TRUE(WaitConnected(slow).ok());
  ASSERT_TRUE(WaitConnected(fast).ok());
  slow_agent->SetBehavior(AgentBehavior::kSilentFreeze);

  auto slow_freeze = io_.Spawn(slow->Freeze(FreezeRequest("job-s"), Clock::now() + 30s));
  ASSERT_TRUE(slow_agent->WaitUntil([&] { return slow_agent->freezes() == 1; }, 10s));
  auto fast_frozen = io_.Run(fast->Freeze(FreezeRequest("job-f"), Clock::now() + 5s));
  ASSERT_TRUE(fast_frozen.ok());
  ASSERT_TRUE(io_.Run(fast->Thaw(proto::Thaw{"job-f", true}, {"/data"}, Clock::now() + 5s)).ok());
  // The fast guest finished while the slow one's request is still outstanding.
  EXPECT_EQ(slow_freeze.wait_for(0s), std::future_status::timeout);
  slow->Stop();
  auto slow_result = slow_freeze.get();
  EXPECT_FALSE(slow_result.ok());
}

TEST_F(GuestLinkTest, FreezeTimesOutWhenTheAgentNeverAnswers) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());
  agent->SetBehavior(AgentBehavior::kSilentFreeze);
  auto frozen = io_.Run(link->Freeze(FreezeRequest("job-t"), Clock::now() + 300ms));
  EXPECT_EQ(frozen.status().code(), Code::kTimeout);
}

// The agent's socket closes (a stalled agent killed) while a Freeze waits for its reply: the
// request fails at once, saying the session ended, long before its deadline.
TEST_F(GuestLinkTest, SessionEndingFailsAWaitingRequestAtOnce) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());
  agent->SetBehavior(AgentBehavior::kStallAfterFreeze);
  auto freeze = io_.Spawn(link->Freeze(FreezeRequest("job-k"), Clock::now() + 30s));
  ASSERT_TRUE(agent->WaitUntil([&] { return agent->freezes() == 1; }, 10s));
  auto closed = Clock::now();
  agent->DropSessions();
  auto frozen = freeze.get();
  EXPECT_LT(Clock::now() - closed, 1s);
  EXPECT_EQ(frozen.status().code(), Code::kGuestUnreachable) << frozen.status().ToString();
  EXPECT_NE(frozen.status().message().find("session ended"), std::string::npos)
      << frozen.status().ToString();
}

// The daemon ends the session itself (here Stop()) while a request waits: the request fails
// at once with kGuestUnreachable "session ended: <why>", not a bare cancellation.
TEST_F(GuestLinkTest, EndingTheSessionFailsAWaitingRequestWithTheReason) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1");
  ASSERT_TRUE(WaitConnected(link).ok());
  agent->SetBehavior(AgentBehavior::kStallAfterFreeze);
  auto freeze = io_.Spawn(link->Freeze(FreezeRequest("job-s"), Clock::now() + 30s));
  ASSERT_TRUE(agent->WaitUntil([&] { return agent->freezes() == 1; }, 10s));
  auto stopped = Clock::now();
  link->Stop();
  auto frozen = freeze.get();
  EXPECT_LT(Clock::now() - stopped, 1s);
  EXPECT_EQ(frozen.status().code(), Code::kGuestUnreachable) << frozen.status().ToString();
  EXPECT_NE(frozen.status().message().find("vm1: session ended: link stopped"), std::string::npos)
      << frozen.status().ToString();
}

// A guest that floods junk during Hello: the link ends the session as soon as the junk passes
// the link's limit, long before the Hello timeout, and says why (issue 11 item 4).
TEST_F(GuestLinkTest, FloodingGuestIsCutOffAtTheJunkLimitNotAtTheHelloTimeout) {
  std::vector<std::uint8_t> undecodable;
  for (int i = 0; i < 256; ++i)
    proto::AppendFrame(std::vector<std::uint8_t>(32, 0xAB), undecodable);
  const std::vector<std::pair<std::string, std::vector<std::uint8_t>>> floods = {
      {"garbage", std::vector<std::uint8_t>(64 * 1024, 0x5A)},
      {"undecodable", undecodable},
  };
  for (const auto& [kind, bytes] : floods) {
    RawAgent agent(dir_ / (kind + ".sock"), bytes, /*repeat=*/true);
    auto link = MakeLink(kind, [](LinkOptions& o) {
      o.hello_timeout = 60s;  // the flood must end the session long before this
      o.backoff_min = 10s;    // one session is enough to look at
      o.backoff_max = 10s;
    });
    ASSERT_TRUE(testing::Eventually(
        [&] { return link->Info().last_error.find("too much junk") != std::string::npos; }, 20s))
        << kind << ": " << link->Info().last_error;
    auto info = link->Info();
    EXPECT_NE(info.state, LinkState::kConnected) << kind;
    EXPECT_EQ(info.sessions, 0u) << kind;
    EXPECT_NE(info.last_error.find(kind == "garbage" ? "bytes skipped" : "undecodable messages"),
              std::string::npos)
        << kind << ": " << info.last_error;
    link->Stop();
  }
}

// A guest that answers Hello with messages that do not decode is not a silent guest: the link
// state says what was wrong with what it sent (issue 11 item 5).
TEST_F(GuestLinkTest, UndecodableRepliesAreNamedInTheLinkState) {
  std::vector<std::uint8_t> bytes;
  for (int i = 0; i < 3; ++i) proto::AppendFrame(std::vector<std::uint8_t>(32, 0xAB), bytes);
  RawAgent agent(dir_ / "vm1.sock", bytes, /*repeat=*/false);
  auto link = MakeLink("vm1", [](LinkOptions& o) {
    o.hello_timeout = 300ms;
    o.backoff_min = 10s;
    o.backoff_max = 10s;
  });
  ASSERT_TRUE(testing::Eventually([&] { return !link->Info().last_error.empty(); }, 20s));
  const auto error = link->Info().last_error;
  EXPECT_NE(error.find("hello: "), std::string::npos) << error;
  EXPECT_NE(error.find("no valid reply"), std::string::npos) << error;
  EXPECT_NE(error.find("3 undecodable messages, last: protocol-error"), std::string::npos) << error;
}

// The agent's side closes: the link leaves "connected" at once (not at the next heartbeat,
// here a minute away) and opens a new session (issue 11 item 6).
TEST_F(GuestLinkTest, ClosedSessionLeavesConnectedAtOnceAndReconnects) {
  auto agent = MakeAgent("vm1", AgentBehavior::kNormal);
  auto link = MakeLink("vm1", [](LinkOptions& o) { o.heartbeat_interval = 60s; });
  ASSERT_TRUE(WaitConnected(link).ok());
  ASSERT_EQ(link->Info().sessions, 1u);
  agent->SetBehavior(AgentBehavior::kSilent);  // the next session stays in Hello
  agent->DropSessions();
  EXPECT_TRUE(testing::Eventually([&] { return link->Info().state != LinkState::kConnected; }, 20s))
      << "still connected after the agent closed its side";
  EXPECT_NE(link->Info().last_error.find("end of stream"), std::string::npos)
      << link->Info().last_error;
  EXPECT_TRUE(testing::Eventually([&] { return agent->hellos() >= 2; }, 20s))
      << "no reconnect after the close";
  agent->SetBehavior(AgentBehavior::kNormal);
  EXPECT_TRUE(WaitConnected(link, 20s).ok());
}

}  // namespace
}  // namespace qb::link
