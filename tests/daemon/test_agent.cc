#include "tests/daemon/test_agent.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <random>

#include "protocol/frame.h"
#include "protocol/message_stream.h"

namespace qb::testing {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;
using Stream = proto::MessageStream<Socket, proto::AgentMessage, proto::AgentMessage>;
using Clock = std::chrono::steady_clock;

struct TestAgent::Impl : std::enable_shared_from_this<TestAgent::Impl> {
  explicit Impl(TestAgentOptions o)
      : options(std::move(o)), acceptor(io), lease_timer(io), work(io.get_executor()) {}

  struct Session {
    explicit Session(Socket s) : stream(std::move(s)) {}
    Stream stream;
    bool stalled = false;  // io thread only (kStallAfterFreeze)
  };

  TestAgentOptions options;
  asio::io_context io;
  asio::local::stream_protocol::acceptor acceptor;
  asio::steady_timer lease_timer;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::vector<std::weak_ptr<Session>> sessions;  // io thread only

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  AgentBehavior behavior = AgentBehavior::kNormal;
  bool is_frozen = false;
  bool lease_expired = false;
  std::string job;
  std::vector<std::string> frozen_volumes;
  Clock::time_point freeze_received;
  int freeze_count = 0, thaw_count = 0, hello_count = 0, request_count = 0;
  std::optional<proto::Thaw> thaw_seen;
  std::optional<proto::Freeze> freeze_seen;
  std::optional<std::chrono::milliseconds> hold;

  void Notify() { changed.notify_all(); }

  AgentBehavior CurrentBehavior() {
    std::lock_guard lock(mutex);
    return behavior;
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      auto session = std::make_shared<Session>(std::move(socket));
      sessions.push_back(session);
      asio::co_spawn(io, Serve(shared_from_this(), session), asio::detached);
    }
  }

  static asio::awaitable<void> Serve(std::shared_ptr<Impl> self, std::shared_ptr<Session> session) {
    for (;;) {
      auto message = co_await session->stream.Read();
      if (!message.ok()) co_return;
      co_await self->Handle(session, std::move(message).value());
    }
  }

  asio::awaitable<void> Reply(std::shared_ptr<Session> session, const proto::AgentMessage& request,
                              proto::AgentBody body, AgentBehavior b) {
    proto::AgentMessage reply{request.request_id, request.nonce, std::move(body)};
    if (b == AgentBehavior::kStaleNonce) reply.nonce ^= 0x5a5a;
    if (b == AgentBehavior::kFlood) {
      std::vector<std::uint8_t> junk;
      for (int i = 0; i < 5000; ++i) {
        const proto::AgentMessage pong{request.request_id + 1000 + static_cast<std::uint64_t>(i),
                                       request.nonce, proto::Pong{}};
        proto::AppendFrame(proto::EncodeAgent(pong), junk);
      }
      co_await session->stream.WriteRaw(std::move(junk));
    }
    co_await session->stream.Write(reply);
  }

  void EndFreeze(bool by_lease) {
    // Caller holds mutex.
    if (!is_frozen) return;
    is_frozen = false;
    lease_expired = by_lease;
    hold = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - freeze_received);
  }

  asio::awaitable<void> Handle(std::shared_ptr<Session> session, proto::AgentMessage request) {
    AgentBehavior b;
    {
      std::lock_guard lock(mutex);
      ++request_count;
      b = behavior;
      if (std::holds_alternative<proto::Hello>(request.body)) ++hello_count;
    }
    Notify();
    if (b == AgentBehavior::kSilent || session->stalled) co_return;
    if (b == AgentBehavior::kGarbage) {
      std::vector<std::uint8_t> garbage(4096);
      std::mt19937 random(static_cast<unsigned>(request.request_id));
      for (auto& byte : garbage) byte = static_cast<std::uint8_t>(random());
      co_await session->stream.WriteRaw(std::move(garbage));
      co_return;
    }
    if (b == AgentBehavior::kOversizeFrames) {
      std::vector<std::uint8_t> huge;
      proto::AppendFrame(std::vector<std::uint8_t>(proto::kDefaultMaxPayload + 4096, 0x41), huge);
      co_await session->stream.WriteRaw(std::move(huge));
      co_return;
    }

    if (std::holds_alternative<proto::Hello>(request.body)) {
      proto::HelloReply hello;
      hello.agent_version = "test-agent (test double)";
      hello.os = proto::OsInfo{proto::OsFamily::kLinux, "TestAgent", "0", "test-guest"};
      hello.capabilities = {"fsfreeze", "inventory", "lease"};
      if (options.hello) {
        hello.agent_version = options.hello->agent_version;
        hello.os = options.hello->os;
        hello.stale_freeze_cleared = options.hello->stale_freeze_cleared;
      }
      {
        std::lock_guard lock(mutex);
        hello.freeze_state.frozen = is_frozen;
        hello.freeze_state.job_id = is_frozen ? job : "";
        hello.freeze_state.frozen_volumes = is_frozen ? frozen_volumes : std::vector<std::string>{};
      }
      co_await Reply(session, request, hello, b);
    } else if (std::holds_alternative<proto::InventoryRequest>(request.body)) {
      co_await Reply(session, request, options.inventory, b);
    } else if (std::holds_alternative<proto::Ping>(request.body)) {
      co_await Reply(session, request, proto::Pong{}, b);
    } else if (std::holds_alternative<proto::StatusRequest>(request.body)) {
      proto::AgentStatus status;
      {
        std::lock_guard lock(mutex);
        status.state.frozen = is_frozen;
        status.state.job_id = is_frozen ? job : "";
        status.state.frozen_volumes = is_frozen ? frozen_volumes : std::vector<std::string>{};
      }
      co_await Reply(session, request, status, b);
    } else if (auto* freeze = std::get_if<proto::Freeze>(&request.body)) {
      co_await HandleFreeze(session, request, *freeze, b);
    } else if (auto* thaw = std::get_if<proto::Thaw>(&request.body)) {
      co_await HandleThaw(session, request, *thaw, b);
    }
  }

  asio::awaitable<void> HandleFreeze(std::shared_ptr<Session> session,
                                     const proto::AgentMessage& request, proto::Freeze freeze,
                                     AgentBehavior b) {
    std::uint32_t lease = freeze.lease_ms == 0 ? options.max_lease_ms
                                               : std::min(freeze.lease_ms, options.max_lease_ms);
    bool refuse = false, busy = false;
    {
      std::lock_guard lock(mutex);
      ++freeze_count;
      freeze_seen = freeze;
      busy = is_frozen;
      refuse = busy || b == AgentBehavior::kRefuseFreeze;
      if (!refuse) {
        is_frozen = true;
        lease_expired = false;
        job = freeze.job_id;
        frozen_volumes = freeze.volumes;
        freeze_received = Clock::now();
        hold.reset();
      }
    }
    if (refuse) {
      Notify();
      const proto::ErrorReply error{
          busy ? proto::ErrorCode::kBusy : proto::ErrorCode::kFreezeFailed,
          busy ? "already frozen" : options.refuse_message};
      co_await Reply(session, request, error, b);
      co_return;
    }
    Notify();
    lease_timer.expires_after(std::chrono::milliseconds(lease));
    lease_timer.async_wait([self = shared_from_this(), job_id = freeze.job_id](auto ec) {
      if (ec) return;
      {
        std::lock_guard lock(self->mutex);
        if (self->job == job_id) self->EndFreeze(true);
      }
      self->Notify();
    });
    if (b == AgentBehavior::kSilentFreeze) co_return;
    if (b == AgentBehavior::kStallAfterFreeze) {
      session->stalled = true;
      co_return;
    }

    proto::Frozen frozen;
    frozen.job_id = b == AgentBehavior::kWrongJobId ? freeze.job_id + "-other" : freeze.job_id;
    frozen.frozen_volumes = freeze.volumes;
    if (b == AgentBehavior::kExtraVolume) frozen.frozen_volumes.push_back("/etc");
    frozen.lease_granted_ms = lease;
    frozen.writers = options.writers;
    if (b == AgentBehavior::kSlowFrozen) {
      asio::steady_timer delay(io, options.slow_frozen_delay);
      co_await delay.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await Reply(session, request, frozen, b);
    if (b == AgentBehavior::kDieAfterFrozen) {
      boost::system::error_code ignored;
      session->stream.stream().close(ignored);
    }
  }

  asio::awaitable<void> HandleThaw(std::shared_ptr<Session> session,
                                   const proto::AgentMessage& request, proto::Thaw thaw,
                                   AgentBehavior b) {
    proto::Thawed thawed;
    bool known;
    {
      std::lock_guard lock(mutex);
      ++thaw_count;
      thaw_seen = thaw;
      known = thaw.job_id == job;
      if (known) {
        bool was_frozen = is_frozen;
        EndFreeze(false);
        thawed.job_id = b == AgentBehavior::kWrongJobId ? thaw.job_id + "-other" : thaw.job_id;
        thawed.held_whole_window = was_frozen && !lease_expired;
        thawed.lease_expired = lease_expired;
        thawed.already_thawed = !was_frozen;
        thawed.thawed_volumes = was_frozen ? frozen_volumes : std::vector<std::string>{};
        if (!thawed.held_whole_window)
          thawed.not_held_reason = lease_expired ? "lease expired" : "not frozen";
        if (b == AgentBehavior::kNotHeld) {
          thawed.held_whole_window = false;
          thawed.not_held_reason = "test agent: a hook failed during the window";
        }
      }
    }
    if (known) lease_timer.cancel();
    Notify();
    if (!known) {
      const proto::ErrorReply error{proto::ErrorCode::kUnknownJob, "no such job"};
      co_await Reply(session, request, error, b);
      co_return;
    }
    thawed.writers = options.thaw_writers;
    co_await Reply(session, request, thawed, b);
  }
};

TestAgent::TestAgent(TestAgentOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {
  impl_->behavior = impl_->options.behavior;
  std::remove(impl_->options.socket_path.c_str());
  asio::local::stream_protocol::endpoint endpoint(impl_->options.socket_path);
  boost::system::error_code ec;
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    ADD_FAILURE() << "test agent cannot listen on " << impl_->options.socket_path << ": "
                  << ec.message();
  asio::co_spawn(impl_->io, impl_->Accept(), asio::detached);
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

TestAgent::~TestAgent() {
  asio::post(impl_->io, [impl = impl_] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->lease_timer.cancel();
    for (auto& weak : impl->sessions) {
      if (auto s = weak.lock()) s->stream.stream().close(ignored);
    }
    impl->work.reset();
    impl->io.stop();
  });
  impl_->thread.join();
  // The aborted reads and accepts are queued but were never run: run them now so the
  // coroutines end and release the Impl they hold (else the Impl leaks through that cycle).
  impl_->io.restart();
  impl_->io.poll();
  std::remove(impl_->options.socket_path.c_str());
}

void TestAgent::SetBehavior(AgentBehavior behavior) {
  std::lock_guard lock(impl_->mutex);
  impl_->behavior = behavior;
}

void TestAgent::DropSessions() {
  asio::post(impl_->io, [impl = impl_] {
    boost::system::error_code ignored;
    for (auto& weak : impl->sessions) {
      if (auto s = weak.lock()) s->stream.stream().close(ignored);
    }
    impl->sessions.clear();
  });
}

bool TestAgent::frozen() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->is_frozen;
}
int TestAgent::freezes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->freeze_count;
}
int TestAgent::thaws() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->thaw_count;
}
int TestAgent::hellos() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->hello_count;
}
int TestAgent::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->request_count;
}
std::optional<proto::Thaw> TestAgent::last_thaw() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->thaw_seen;
}
std::optional<proto::Freeze> TestAgent::last_freeze() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->freeze_seen;
}
std::optional<std::chrono::milliseconds> TestAgent::last_hold() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->hold;
}

bool TestAgent::WaitUntil(const std::function<bool()>& predicate,
                          std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->changed.wait_for(lock, timeout, [&] {
    lock.unlock();
    bool done = predicate();
    lock.lock();
    return done;
  });
}

proto::Inventory TestAgent::SimpleInventory(const std::string& volume, const std::string& disk,
                                            const std::string& wwn) {
  proto::Inventory inventory;
  inventory.disks.push_back(proto::Disk{disk, wwn, "SERIAL-" + disk, "QB", "LUN", "scsi", 1 << 30});
  inventory.disks.push_back(proto::Disk{"vda", "", "BOOT", "virtio", "boot", "virtio", 8ull << 30});
  inventory.volumes.push_back(
      proto::Volume{volume, "/dev/" + disk, "xfs", true, {disk}, 1 << 30, {volume}});
  inventory.volumes.push_back(
      proto::Volume{"/", "/dev/vda1", "ext4", true, {"vda"}, 8ull << 30, {"/"}});
  return inventory;
}

}  // namespace qb::testing
