// One agent session over any byte stream: the agent's (server) side of the protocol.
//
// Rules (protocol/agent.capnp):
//  - The daemon speaks first. Bytes that do not form a valid frame (garbage, half a message of
//    an old daemon) are skipped by the frame decoder.
//  - A Hello opens a session at any time and sets its nonce; the agent checks the protocol
//    version (same major required, any minor) and answers ErrorReply versionMismatch otherwise.
//    Requests before a Hello or with another nonce are dropped unanswered. Reply-type messages
//    from the host are ignored.
//  - Frozen mode (the service holds or is making a freeze): only Hello, Status, Ping and Thaw are
//    accepted; anything else gets ErrorReply busy.
//  - In-flight limit: one long request (Freeze or Inventory) at a time per session; another one
//    gets ErrorReply busy. Hello, Status and Ping are answered at once, and Thaw is always
//    accepted (it must be able to overtake a Freeze whose FIFREEZE blocks).
//
// Threading: the stream's executor must be the io thread the service runs on.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <exception>
#include <memory>
#include <optional>

#include "guest-agent/agent_service.h"
#include "protocol/codec.h"
#include "protocol/message_stream.h"

namespace qb::agent {

struct SessionCounters {
  std::uint64_t dropped_no_session = 0;   // requests before any Hello
  std::uint64_t dropped_stale_nonce = 0;  // requests of another session
  std::uint64_t ignored_replies = 0;      // reply-type messages from the host
};

template <typename Stream>
class AgentSession : public std::enable_shared_from_this<AgentSession<Stream>> {
 public:
  using Channel = proto::MessageStream<Stream, proto::AgentMessage, proto::AgentMessage>;

  // `service` and `log` must outlive the session.
  AgentSession(Stream stream, AgentService& service, std::shared_ptr<spdlog::logger> log)
      : channel_(std::move(stream)), service_(service), log_(std::move(log)) {}

  // Serves requests until the stream ends (kGuestUnreachable) or fails (kIoError, kCancelled).
  // May be called again after it returned (virtio-serial: the same port, a new host); session
  // state (nonce, framing) carries over, a new Hello replaces it.
  boost::asio::awaitable<qb::Status> Run() {
    for (;;) {
      auto message = co_await channel_.Read();
      if (!message.ok()) co_return message.status();
      Dispatch(std::move(message).value());
    }
  }

  Channel& channel() { return channel_; }
  const SessionCounters& counters() const { return counters_; }

 private:
  void Dispatch(proto::AgentMessage message) {
    namespace asio = boost::asio;
    if (!proto::IsRequest(message.body)) {
      ++counters_.ignored_replies;
      return;
    }
    if (auto* hello = std::get_if<proto::Hello>(&message.body)) {
      Status version = proto::CheckProtocolVersion(hello->protocol_major, hello->protocol_minor);
      if (!version.ok()) {
        nonce_.reset();
        log_->warn("refused Hello: {}", version.ToString());
        Reply(message.request_id, message.nonce,
              proto::ErrorReply{proto::ErrorCode::kVersionMismatch, version.message()});
        return;
      }
      nonce_ = message.nonce;
      log_->info("session opened by {} (daemon {})", hello->host_name, hello->daemon_version);
      Reply(message.request_id, message.nonce, service_.Hello());
      return;
    }
    if (!nonce_) {
      ++counters_.dropped_no_session;
      return;
    }
    if (message.nonce != *nonce_) {
      ++counters_.dropped_stale_nonce;
      return;
    }
    const auto id = message.request_id;
    const auto nonce = message.nonce;
    if (std::holds_alternative<proto::StatusRequest>(message.body)) {
      Reply(id, nonce, service_.Status());
      return;
    }
    if (std::holds_alternative<proto::Ping>(message.body)) {
      proto::Pong pong;
      pong.guest_monotonic_ns = service_.Status().guest_monotonic_ns;
      Reply(id, nonce, pong);
      return;
    }
    const bool is_thaw = std::holds_alternative<proto::Thaw>(message.body);
    if (!is_thaw && service_.InFrozenMode()) {
      Reply(id, nonce,
            proto::ErrorReply{proto::ErrorCode::kBusy,
                              "frozen mode: only Hello, Status, Ping and Thaw are accepted"});
      return;
    }
    if (!is_thaw) {
      if (long_request_in_flight_) {
        Reply(id, nonce,
              proto::ErrorReply{proto::ErrorCode::kBusy, "another request is in flight"});
        return;
      }
      long_request_in_flight_ = true;
    }
    auto self = this->shared_from_this();
    asio::co_spawn(
        channel_.stream().get_executor(),
        [self, message = std::move(message), is_thaw]() mutable {
          return self->Handle(std::move(message), is_thaw);
        },
        [self, id, nonce](std::exception_ptr error) {
          if (!error) return;
          // A bug. The service thaws on its own paths; say so and keep serving.
          std::string what = "internal error";
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          self->log_->error("request {} failed with an exception: {}", id, what);
          self->Reply(id, nonce, proto::ErrorReply{proto::ErrorCode::kInternal, what});
        });
  }

  boost::asio::awaitable<void> Handle(proto::AgentMessage message, bool is_thaw) {
    // Cleared before the reply goes out: the daemon may send its next request as soon as it
    // has the reply, before this coroutine resumes from Write().
    struct ClearInFlight {
      AgentSession* s;
      bool active;
      void Now() {
        if (active) s->long_request_in_flight_ = false;
        active = false;
      }
      ~ClearInFlight() { Now(); }
    } clear{this, !is_thaw};
    proto::AgentBody body;
    if (auto* freeze = std::get_if<proto::Freeze>(&message.body)) {
      body = co_await service_.Freeze(*freeze);
    } else if (auto* thaw = std::get_if<proto::Thaw>(&message.body)) {
      body = co_await service_.Thaw(*thaw);
    } else if (std::holds_alternative<proto::InventoryRequest>(message.body)) {
      body = co_await service_.Inventory();
    } else {
      body = proto::ErrorReply{proto::ErrorCode::kBadRequest,
                               std::string("unexpected ") + proto::BodyName(message.body)};
    }
    clear.Now();
    const proto::AgentMessage reply{message.request_id, message.nonce, std::move(body)};
    Status written = co_await channel_.Write(reply);
    if (!written.ok()) log_->warn("reply {} lost: {}", message.request_id, written.ToString());
    service_.AfterReply();
  }

  void Reply(std::uint64_t id, std::uint64_t nonce, proto::AgentBody body) {
    namespace asio = boost::asio;
    auto self = this->shared_from_this();
    auto reply =
        std::make_shared<proto::AgentMessage>(proto::AgentMessage{id, nonce, std::move(body)});
    asio::co_spawn(
        channel_.stream().get_executor(),
        [self, reply]() -> asio::awaitable<void> {
          Status written = co_await self->channel_.Write(*reply);
          if (!written.ok())
            self->log_->warn("reply {} lost: {}", reply->request_id, written.ToString());
        },
        asio::detached);
  }

  Channel channel_;
  AgentService& service_;
  std::shared_ptr<spdlog::logger> log_;
  std::optional<std::uint64_t> nonce_;
  bool long_request_in_flight_ = false;
  SessionCounters counters_;
};

}  // namespace qb::agent
