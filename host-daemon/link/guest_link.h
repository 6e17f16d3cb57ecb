// GuestLink: the daemon's connection to one guest's agent.
//
// One GuestLink per guest, each on its own strand of the daemon's single io_context. It
// connects to the agent endpoint, opens a session (Hello with a fresh random nonce, version
// check), fetches the inventory, sends a heartbeat Ping every heartbeat_interval, and when the
// session ends reconnects with exponential backoff (backoff_min doubling up to backoff_max).
//
// The guest is untrusted (DESIGN.md invariant 4): every reply is checked against its request
// (host-daemon/link/reply_check.h) and every request has a deadline, so a guest that sends
// garbage, oversize frames, floods, or never answers costs its own link a bounded amount of
// memory and CPU and never blocks another link. A session whose junk passes its limits
// (max_junk_per_session bad, undecodable or unexpected messages, or max_junk_bytes_per_session
// bytes skipped between frames) is closed as the bytes arrive, saying what was wrong, and
// reconnected after backoff. When the agent's side closes, the link notices at once: the state
// leaves "connected" and reconnecting starts without waiting for the next heartbeat.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time_limits.h"
#include "host-daemon/link/endpoint.h"
#include "protocol/codec.h"
#include "protocol/message_stream.h"
#include "protocol/messages.h"

namespace qb::link {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

enum class LinkState { kConnecting, kConnected, kDown, kStopped };
// "connecting", "connected", "down", "stopped" (the strings of control.capnp GuestInfo).
const char* LinkStateName(LinkState state);

struct LinkOptions {
  std::string guest_name;
  Endpoint endpoint;
  std::string host_name;       // sent in Hello, for the agent's logs
  std::string daemon_version;  // sent in Hello, for the agent's logs
  std::chrono::milliseconds hello_timeout = limits::kHelloTimeout;
  std::chrono::milliseconds request_timeout = limits::kRequestTimeout;
  std::chrono::milliseconds heartbeat_interval = limits::kHeartbeatInterval;
  std::chrono::milliseconds backoff_min = limits::kReconnectBackoffMin;
  std::chrono::milliseconds backoff_max = limits::kReconnectBackoffMax;
  proto::CodecLimits codec_limits;
  std::uint64_t max_junk_per_session = 1024;
  std::uint64_t max_junk_bytes_per_session = 256 * 1024;
  // Called on the link's strand each time a session opens (after Hello and inventory), with
  // the agent's HelloReply (its freeze_state names a job it is frozen for). May be empty.
  std::function<void(const proto::HelloReply&)> on_session;
};

// A consistent copy of a link's state, safe to read from any thread.
struct LinkInfo {
  LinkState state = LinkState::kConnecting;
  std::string last_error;
  std::optional<proto::HelloReply> hello;          // of the current (or last) session
  std::optional<proto::Inventory> inventory;       // last inventory fetched
  std::optional<proto::FreezeState> freeze_state;  // last freeze state the agent reported
  std::uint64_t sessions = 0;                      // sessions opened so far
  // Bad and oversize frames, undecodable messages, stale and unmatched replies in this
  // session (or in the last one, once it ended).
  std::uint64_t junk = 0;
};

class GuestLink : public std::enable_shared_from_this<GuestLink> {
 public:
  using Socket = asio::generic::stream_protocol::socket;
  using Client = proto::AgentClient<Socket>;

  // The link lives on a new strand of `io`. Call Start() to connect.
  static std::shared_ptr<GuestLink> Create(const asio::any_io_executor& io, LinkOptions options);
  ~GuestLink();

  // Starts the connect / heartbeat / reconnect loop. Call once, from any thread.
  void Start();
  // Closes the session and ends the loop; outstanding requests fail with kGuestUnreachable or
  // kCancelled. Idempotent; any thread. The link stays usable for Info().
  void Stop();

  const std::string& name() const { return options_.guest_name; }
  const LinkOptions& options() const { return options_; }
  LinkInfo Info() const;

  // The requests below may be awaited from any executor; they run on the link's strand. Each
  // fails with kGuestUnreachable when no session is open, kTimeout when `deadline` passes,
  // kProtocolError when the reply does not match the request, or the Status of the agent's
  // ErrorReply.

  // Freeze: a Frozen that accounts for exactly the requested volumes (CheckFrozen).
  asio::awaitable<Result<proto::Frozen>> Freeze(proto::Freeze request, Clock::time_point deadline);
  // Thaw: a Thawed for the same job; thawed volumes among `frozen_volumes` (may be empty).
  asio::awaitable<Result<proto::Thawed>> Thaw(proto::Thaw request,
                                              std::vector<std::string> frozen_volumes,
                                              Clock::time_point deadline);
  // The agent's freeze state (also remembered for Info()).
  asio::awaitable<Result<proto::AgentStatus>> Status(Clock::time_point deadline);
  // A fresh inventory (also remembered for Info()).
  asio::awaitable<Result<proto::Inventory>> Inventory(Clock::time_point deadline);
  // Succeeds once a session is open; kTimeout if none opens by `deadline`.
  asio::awaitable<qb::Status> WaitConnected(Clock::time_point deadline);

 private:
  GuestLink(const asio::any_io_executor& io, LinkOptions options);

  asio::awaitable<void> Run();
  asio::awaitable<qb::Status> OpenSession();
  asio::awaitable<void> Heartbeat();
  // `body` must outlive the call (callers pass a named variable: see common.md on g++ 12).
  asio::awaitable<Result<proto::AgentMessage>> Request(const proto::AgentBody& body,
                                                       Clock::time_point deadline);
  void EndSession(const std::string& why);
  // The client's reader loop ended (the agent closed, a read failed, junk over the limit).
  void OnClientClosed(const std::shared_ptr<Client>& client, const qb::Status& why);
  void SetState(LinkState state, const std::string& error);
  std::uint64_t JunkCount() const;

  LinkOptions options_;
  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer wake_;  // backoff and heartbeat sleeps; Stop() cancels it
  std::vector<std::shared_ptr<asio::steady_timer>> waiters_;  // WaitConnected; strand only
  std::shared_ptr<Client> client_;                            // strand only
  bool stopped_ = false;                                      // strand only
  bool started_ = false;

  mutable std::mutex info_mutex_;
  LinkInfo info_;
};

}  // namespace qb::link
