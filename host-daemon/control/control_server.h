// The daemon's control socket: a unix socket (mode 0660 by default, group configurable) that
// quiescectl and orchestration hooks talk to with the control protocol (protocol/control.capnp).
// One session per client; each ControlRequest gets exactly one ControlReply with its id.
// A session with no request in flight is idle: it is closed after `idle_timeout`. At most
// `max_sessions` sessions are open (idle or with a request in flight); a client beyond that gets
// one ControlError kBusy ("too many control clients") for its first request, then is closed.
// A request that is malformed, names unknown things or fails gets a ControlError; nothing a
// client sends can crash the daemon (exceptions are caught per request and reported kInternal).
//
// Threading: runs on the daemon's single-threaded io_context, like the JobRunner it drives.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "common/time_limits.h"
#include "host-daemon/jobs/guest_registry.h"
#include "host-daemon/jobs/job_runner.h"
#include "protocol/control_messages.h"

namespace qb::control {

namespace asio = boost::asio;

struct ControlOptions {
  std::string socket_path;
  std::uint32_t mode = 0660;      // file mode of the socket
  std::string group;              // group owning the socket ("" = the daemon's group)
  std::size_t max_sessions = 64;  // clients beyond this are answered "busy" and closed
  std::chrono::milliseconds idle_timeout = limits::kControlIdleTimeout;  // closes idle sessions
};

// Answers one request. Exposed for tests; ControlServer sessions call it.
asio::awaitable<proto::ControlReply> Dispatch(const proto::ControlRequest& request,
                                              jobs::JobRunner& runner, jobs::GuestRegistry& guests);

class ControlServer {
 public:
  // `runner` and `guests` must outlive the server.
  ControlServer(asio::any_io_executor io, jobs::JobRunner& runner, jobs::GuestRegistry& guests,
                ControlOptions options);
  ~ControlServer();

  // Binds the socket (replacing a stale socket file), applies mode and group, listens and
  // starts accepting. kIoError / kInvalidArgument (unknown group) on failure.
  Status Start();
  // Stops accepting, closes open sessions, removes the socket file. Idempotent. Idle sessions
  // close at once; a session with a request in flight writes that request's reply first, then
  // closes (so a client is answered, e.g. "cancelled: daemon stopping", not cut off). Call on
  // the io_context's thread.
  void Stop();

  // Open sessions (idle or with a request in flight); 0 once Stop() has let every reply out.
  std::size_t sessions() const;

  // Shared with the sessions' coroutines, which may outlive the server by a few steps.
  struct Sessions;

 private:
  asio::awaitable<void> Accept();

  asio::any_io_executor io_;
  jobs::JobRunner& runner_;
  jobs::GuestRegistry& guests_;
  ControlOptions options_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<Sessions> sessions_;
  bool started_ = false;
};

}  // namespace qb::control
