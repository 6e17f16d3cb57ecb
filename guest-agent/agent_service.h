// The seam between the protocol side of the agent (sessions, transports) and the platform side
// (Linux fsfreeze, later Windows VSS). A session validates and routes requests; the service
// decides what a freeze means on this platform.
//
// Arguments are borrowed: they must stay alive until the awaitable completes (pass named
// objects; g++ 12 mishandles temporaries inside co_await).
//
// Threading: every method is called on the io thread (the one io_context of the process). The
// awaitables complete on it too; a service runs blocking work on its own worker thread.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "protocol/messages.h"

namespace qb::agent {

class AgentService {
 public:
  virtual ~AgentService() = default;

  // What the agent says in HelloReply (version, OS, capabilities, current freeze state, the
  // stale freeze cleared at start). Never blocks.
  virtual proto::HelloReply Hello() = 0;

  // The freeze state and uptime for a Status reply. Never blocks.
  virtual proto::AgentStatus Status() = 0;

  // True from the moment a Freeze is accepted until its job has ended (last FITHAW done):
  // sessions then accept only Hello, Status, Ping and Thaw.
  virtual bool InFrozenMode() const = 0;

  // An Inventory, or an ErrorReply.
  virtual boost::asio::awaitable<proto::AgentBody> Inventory() = 0;

  // A Frozen, or an ErrorReply (busy, notFound, hookFailed, alreadyFrozen, freezeFailed,
  // badRequest, unsupported). On every error nothing is left frozen.
  virtual boost::asio::awaitable<proto::AgentBody> Freeze(const proto::Freeze& request) = 0;

  // A Thawed (also for a job that already ended: alreadyThawed), or ErrorReply unknownJob.
  // Idempotent. A Thaw that arrives while its Freeze is still running waits for it.
  virtual boost::asio::awaitable<proto::AgentBody> Thaw(const proto::Thaw& request) = 0;

  // Called by the session once the reply to a Freeze, Thaw or Inventory has been written (or
  // failed): bookkeeping that need not delay the reply (log replay, the next thaw guard) runs
  // here. Never blocks.
  virtual void AfterReply() {}
};

}  // namespace qb::agent
