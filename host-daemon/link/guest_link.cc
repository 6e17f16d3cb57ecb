#include "host-daemon/link/guest_link.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "common/guest_text.h"
#include "host-daemon/link/reply_check.h"
#include "host-daemon/link/run_on.h"

namespace qb::link {
namespace {

std::uint64_t RandomNonce() {
  std::random_device device;
  std::uint64_t nonce = 0;
  while (nonce == 0) nonce = (std::uint64_t{device()} << 32) ^ device();
  return nonce;
}

Clock::duration Remaining(Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  return left < Clock::duration::zero() ? Clock::duration::zero() : left;
}

}  // namespace

const char* LinkStateName(LinkState state) {
  switch (state) {
    case LinkState::kConnecting:
      return "connecting";
    case LinkState::kConnected:
      return "connected";
    case LinkState::kDown:
      return "down";
    case LinkState::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::shared_ptr<GuestLink> GuestLink::Create(const asio::any_io_executor& io, LinkOptions options) {
  return std::shared_ptr<GuestLink>(new GuestLink(io, std::move(options)));
}

GuestLink::GuestLink(const asio::any_io_executor& io, LinkOptions options)
    : options_(std::move(options)), strand_(asio::make_strand(io)), wake_(strand_) {}

GuestLink::~GuestLink() = default;

void GuestLink::Start() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    if (self->started_ || self->stopped_) return;
    self->started_ = true;
    asio::co_spawn(self->strand_, self->Run(), asio::detached);
  });
}

void GuestLink::Stop() {
  asio::dispatch(strand_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->EndSession("link stopped");
    self->wake_.cancel();
    if (!self->started_) self->SetState(LinkState::kStopped, "link stopped");
  });
}

LinkInfo GuestLink::Info() const {
  std::lock_guard lock(info_mutex_);
  return info_;
}

void GuestLink::SetState(LinkState state, const std::string& error) {
  std::lock_guard lock(info_mutex_);
  info_.state = state;
  if (!error.empty()) info_.last_error = error;
}

std::uint64_t GuestLink::JunkCount() const {
  if (!client_) return 0;
  return client_->channel().bad_messages();
}

void GuestLink::OnClientClosed(const std::shared_ptr<Client>& client, const qb::Status& why) {
  if (client_ != client) return;  // already ended by the daemon
  EndSession(why.ToString());
}

void GuestLink::EndSession(const std::string& why) {
  if (!client_) return;
  {
    std::lock_guard lock(info_mutex_);
    info_.junk = JunkCount();
  }
  spdlog::info("guest {}: session ended: {}", options_.guest_name, why);
  // Requests still waiting on this session fail now, saying why, not at their deadlines.
  client_->CancelAll(
      Error(Code::kGuestUnreachable, "guest " + options_.guest_name + ": session ended: " + why));
  client_->Close();
  client_.reset();
  SetState(stopped_ ? LinkState::kStopped : LinkState::kDown, why);
  wake_.cancel();  // the heartbeat loop notices at once
}

asio::awaitable<void> GuestLink::Run() {
  auto self = shared_from_this();  // the loop keeps the link alive until Stop()
  auto backoff = options_.backoff_min;
  while (!stopped_) {
    SetState(LinkState::kConnecting, "");
    qb::Status opened = co_await OpenSession();
    if (opened.ok()) {
      backoff = options_.backoff_min;
      co_await Heartbeat();
    } else {
      SetState(LinkState::kDown, opened.ToString());
      spdlog::debug("guest {}: connect failed: {}", options_.guest_name, opened.ToString());
    }
    if (stopped_) break;
    wake_.expires_after(backoff);
    co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
  SetState(LinkState::kStopped, "");
  for (auto& waiter : waiters_) waiter->cancel();
  waiters_.clear();
}

asio::awaitable<qb::Status> GuestLink::OpenSession() {
  Socket socket(strand_);
  auto address = ToSocketAddress(options_.endpoint);
  // A connect that hangs (vsock to a stuck guest) is cut off at the Hello timeout.
  auto guard = std::make_shared<asio::steady_timer>(strand_, options_.hello_timeout);
  auto timed_out = std::make_shared<bool>(false);
  auto connecting = std::make_shared<Socket*>(&socket);  // cleared once the connect completes
  guard->async_wait([timed_out, connecting](boost::system::error_code ec) {
    if (ec || *connecting == nullptr) return;
    *timed_out = true;
    boost::system::error_code ignored;
    (*connecting)->close(ignored);
  });
  auto [ec] = co_await socket.async_connect(address, asio::as_tuple(asio::use_awaitable));
  *connecting = nullptr;
  guard->cancel();
  if (*timed_out) co_return Error(Code::kTimeout, "connect: no answer within the hello timeout");
  if (ec) co_return Error(Code::kGuestUnreachable, "connect: " + ec.message());

  client_ = std::make_shared<Client>(
      std::move(socket), options_.codec_limits,
      proto::JunkLimit{options_.max_junk_per_session, options_.max_junk_bytes_per_session});
  // Runs on the strand (the socket's executor) when the reader loop ends; posted, so the
  // session ends outside the reader's own frame.
  client_->SetOnClose([weak_link = weak_from_this(),
                       weak_client = std::weak_ptr<Client>(client_)](const qb::Status& why) {
    auto link = weak_link.lock();
    if (!link) return;
    asio::post(link->strand_, [link, weak_client, why] {
      if (auto closed = weak_client.lock()) link->OnClientClosed(closed, why);
    });
  });
  client_->SetNonce(RandomNonce());
  client_->Start();
  auto client = client_;

  proto::Hello hello;
  hello.daemon_version = options_.daemon_version;
  hello.host_name = options_.host_name;
  const proto::AgentBody hello_body = hello;
  auto hello_reply = co_await Request(hello_body, Clock::now() + options_.hello_timeout);
  Result<proto::HelloReply> checked = hello_reply.ok()
                                          ? CheckHelloReply(*hello_reply)
                                          : Result<proto::HelloReply>(hello_reply.status());
  if (!checked.ok()) {
    EndSession("hello: " + checked.status().ToString());
    co_return checked.status().WithContext("hello");
  }
  if (client_ != client) co_return Error(Code::kGuestUnreachable, "session ended during hello");

  std::optional<proto::Inventory> inventory;
  const proto::AgentBody inventory_body = proto::InventoryRequest{};
  auto inventory_reply = co_await Request(inventory_body, Clock::now() + options_.request_timeout);
  if (inventory_reply.ok()) {
    auto checked_inventory = CheckInventory(*inventory_reply);
    if (checked_inventory.ok()) {
      inventory = std::move(checked_inventory).value();
    } else if (checked_inventory.status().code() == Code::kProtocolError) {
      EndSession("inventory: " + checked_inventory.status().ToString());
      co_return checked_inventory.status().WithContext("inventory");
    }
    // An agent without inventory support answers an Error: the session stays useful.
  } else {
    EndSession("inventory: " + inventory_reply.status().ToString());
    co_return inventory_reply.status().WithContext("inventory");
  }
  if (client_ != client) co_return Error(Code::kGuestUnreachable, "session ended during hello");

  {
    std::lock_guard lock(info_mutex_);
    info_.state = LinkState::kConnected;
    info_.hello = *checked;
    info_.freeze_state = checked->freeze_state;
    if (inventory) info_.inventory = std::move(inventory);
    ++info_.sessions;
    info_.junk = 0;
  }
  if (!checked->stale_freeze_cleared.job_id.empty() ||
      !checked->stale_freeze_cleared.volumes.empty()) {
    spdlog::warn("guest {}: agent thawed a stale freeze of job '{}' at start", options_.guest_name,
                 GuestText(checked->stale_freeze_cleared.job_id));
  }
  spdlog::info("guest {}: connected to {} ({})", options_.guest_name,
               GuestText(checked->agent_version), GuestText(checked->os.name));
  for (auto& waiter : waiters_) waiter->cancel();
  waiters_.clear();
  if (options_.on_session) options_.on_session(*checked);
  co_return qb::Status::Ok();
}

asio::awaitable<void> GuestLink::Heartbeat() {
  auto client = client_;
  while (!stopped_ && client_ == client && client->open()) {
    wake_.expires_after(options_.heartbeat_interval);
    co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopped_ || client_ != client) break;
    if (!client->open()) {
      EndSession(client->close_reason());
      break;
    }
    const proto::AgentBody ping = proto::Ping{};
    auto pong = co_await Request(ping, Clock::now() + options_.request_timeout);
    if (client_ != client) break;
    if (!pong.ok()) {
      EndSession("heartbeat: " + pong.status().ToString());
      break;
    }
    if (!std::holds_alternative<proto::Pong>(pong->body)) {
      EndSession(std::string("heartbeat: agent answered ") + proto::BodyName(pong->body));
      break;
    }
  }
}

asio::awaitable<Result<proto::AgentMessage>> GuestLink::Request(const proto::AgentBody& body,
                                                                Clock::time_point deadline) {
  if (!client_ || !client_->open()) {
    co_return Error(Code::kGuestUnreachable, "guest " + options_.guest_name + ": no agent session");
  }
  auto client = client_;
  const auto left = Remaining(deadline);
  auto reply = co_await client->Request(body, left);
  if (!reply.ok() && reply.status().code() == Code::kTimeout) {
    // A guest that sent only junk is not a silent guest: say what it sent.
    const auto junk = client->channel().JunkSummary();
    if (!junk.empty()) reply = Error(Code::kTimeout, "no valid reply within the deadline; " + junk);
  }
  if (client_ == client) {
    auto junk = JunkCount();
    {
      std::lock_guard lock(info_mutex_);
      info_.junk = junk;
    }
    if (junk > options_.max_junk_per_session) {
      EndSession("too many bad or unexpected messages from the agent");
    } else if (!reply.ok() && reply.status().code() == Code::kGuestUnreachable) {
      EndSession(reply.status().message());
    }
  }
  co_return reply;
}

asio::awaitable<Result<proto::Frozen>> GuestLink::Freeze(proto::Freeze request,
                                                         Clock::time_point deadline) {
  auto self = shared_from_this();
  co_return co_await RunOn(
      strand_,
      [](std::shared_ptr<GuestLink> link, proto::Freeze request,
         Clock::time_point deadline) -> asio::awaitable<Result<proto::Frozen>> {
        const proto::AgentBody body = request;
        auto reply = co_await link->Request(body, deadline);
        if (!reply.ok()) co_return reply.status();
        auto frozen = CheckFrozen(*reply, request);
        if (frozen.ok()) {
          std::lock_guard lock(link->info_mutex_);
          proto::FreezeState state;
          state.frozen = true;
          state.job_id = request.job_id;
          state.frozen_volumes = frozen->frozen_volumes;
          state.lease_left_ms = frozen->lease_granted_ms;
          state.mode = request.mode;
          link->info_.freeze_state = state;
        }
        co_return frozen;
      }(self, std::move(request), deadline));
}

asio::awaitable<Result<proto::Thawed>> GuestLink::Thaw(proto::Thaw request,
                                                       std::vector<std::string> frozen_volumes,
                                                       Clock::time_point deadline) {
  auto self = shared_from_this();
  co_return co_await RunOn(
      strand_,
      [](std::shared_ptr<GuestLink> link, proto::Thaw request, std::vector<std::string> volumes,
         Clock::time_point deadline) -> asio::awaitable<Result<proto::Thawed>> {
        const proto::AgentBody body = request;
        auto reply = co_await link->Request(body, deadline);
        if (!reply.ok()) co_return reply.status();
        auto thawed = CheckThawed(*reply, request, volumes);
        if (thawed.ok()) {
          std::lock_guard lock(link->info_mutex_);
          proto::FreezeState state;
          state.last_job_id = request.job_id;
          state.last_held_whole_window = thawed->held_whole_window;
          state.last_not_held_reason = thawed->not_held_reason;
          link->info_.freeze_state = state;
        }
        co_return thawed;
      }(self, std::move(request), std::move(frozen_volumes), deadline));
}

asio::awaitable<Result<proto::AgentStatus>> GuestLink::Status(Clock::time_point deadline) {
  auto self = shared_from_this();
  co_return co_await RunOn(
      strand_,
      [](std::shared_ptr<GuestLink> link,
         Clock::time_point deadline) -> asio::awaitable<Result<proto::AgentStatus>> {
        const proto::AgentBody body = proto::StatusRequest{};
        auto reply = co_await link->Request(body, deadline);
        if (!reply.ok()) co_return reply.status();
        auto status = CheckStatus(*reply);
        if (status.ok()) {
          std::lock_guard lock(link->info_mutex_);
          link->info_.freeze_state = status->state;
        }
        co_return status;
      }(self, deadline));
}

asio::awaitable<Result<proto::Inventory>> GuestLink::Inventory(Clock::time_point deadline) {
  auto self = shared_from_this();
  co_return co_await RunOn(
      strand_,
      [](std::shared_ptr<GuestLink> link,
         Clock::time_point deadline) -> asio::awaitable<Result<proto::Inventory>> {
        const proto::AgentBody body = proto::InventoryRequest{};
        auto reply = co_await link->Request(body, deadline);
        if (!reply.ok()) co_return reply.status();
        auto inventory = CheckInventory(*reply);
        if (inventory.ok()) {
          std::lock_guard lock(link->info_mutex_);
          link->info_.inventory = *inventory;
        }
        co_return inventory;
      }(self, deadline));
}

asio::awaitable<qb::Status> GuestLink::WaitConnected(Clock::time_point deadline) {
  auto self = shared_from_this();
  co_return co_await RunOn(
      strand_,
      [](std::shared_ptr<GuestLink> link,
         Clock::time_point deadline) -> asio::awaitable<qb::Status> {
        for (;;) {
          auto info = link->Info();
          if (info.state == LinkState::kConnected && link->client_) co_return qb::Status::Ok();
          if (link->stopped_) co_return Error(Code::kCancelled, "link stopped");
          if (Clock::now() >= deadline) {
            co_return Error(Code::kTimeout, "guest " + link->options_.guest_name +
                                                ": no agent session: " + info.last_error);
          }
          auto waiter = std::make_shared<asio::steady_timer>(link->strand_, deadline);
          link->waiters_.push_back(waiter);
          co_await waiter->async_wait(asio::as_tuple(asio::use_awaitable));
          std::erase(link->waiters_, waiter);
        }
      }(self, deadline));
}

}  // namespace qb::link
