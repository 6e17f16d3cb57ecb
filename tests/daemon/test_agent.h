// TestAgent: a TEST DOUBLE of quiesce-agent for the daemon's tests. It speaks the real agent
// protocol (qb::proto::MessageStream over a unix socket) but freezes nothing: "frozen" is a flag
// with a lease timer standing in for the agent's watchdog. Hostile behaviours let tests prove
// the daemon survives a guest that lies, stalls, floods or dies (DESIGN.md invariant 4).
//
// Runs its own io_context on its own thread, like a guest would. All methods are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/messages.h"

namespace qb::testing {

enum class AgentBehavior {
  kNormal,          // a well-behaved agent
  kGarbage,         // answers every request with random bytes
  kOversizeFrames,  // answers every request with a frame over the size limit
  kSilent,          // reads requests, never answers anything
  kFlood,           // before each reply, sends thousands of unsolicited replies
  kStaleNonce,      // answers with a nonce of another session
  kWrongJobId,      // answers Freeze / Thaw for another job id
  kExtraVolume,     // Frozen claims a volume that was not asked for
  kSilentFreeze,    // answers everything but Freeze
  kSlowFrozen,      // answers Freeze after slow_frozen_delay
  kNotHeld,         // Thawed says heldWholeWindow=false
  kDieAfterFrozen,  // sends Frozen, then closes the connection (the lease still thaws)
  kRefuseFreeze,    // answers Freeze with ErrorReply freezeFailed
  // Takes the freeze, then answers nothing more on that session, like an agent SIGSTOPped
  // right after receiving Freeze; the socket stays open (DropSessions() closes it, as a
  // kill -9 would). The lease still thaws it.
  kStallAfterFreeze,
};

struct TestAgentOptions {
  std::string socket_path;
  AgentBehavior behavior = AgentBehavior::kNormal;
  proto::Inventory inventory;  // what InventoryRequest returns
  std::chrono::milliseconds slow_frozen_delay{0};
  std::uint32_t max_lease_ms = 10000;             // cap on a granted lease (an agent's config)
  std::vector<proto::WriterResult> writers;       // reported in every Frozen (hooks / VSS writers)
  std::vector<proto::WriterResult> thaw_writers;  // reported in every Thawed
  std::optional<proto::HelloReply> hello;         // texts of the HelloReply (default: its own)
  std::string refuse_message = "test agent refuses to freeze";  // kRefuseFreeze's ErrorReply
};

class TestAgent {
 public:
  // Listens on options.socket_path (removed first if it exists). Aborts the test on failure.
  explicit TestAgent(TestAgentOptions options);
  // Stops the thread, closes every session, removes the socket file.
  ~TestAgent();
  TestAgent(const TestAgent&) = delete;
  TestAgent& operator=(const TestAgent&) = delete;

  void SetBehavior(AgentBehavior behavior);
  // Closes every open session (the daemon sees end of stream). The listener stays.
  void DropSessions();

  // Observations.
  bool frozen() const;   // a freeze is held now (no Thaw, lease not expired)
  int freezes() const;   // Freeze requests received
  int thaws() const;     // Thaw requests received
  int hellos() const;    // Hello requests received
  int requests() const;  // requests of any kind received
  std::optional<proto::Thaw> last_thaw() const;
  std::optional<proto::Freeze> last_freeze() const;
  // How long the last freeze was held (Freeze receipt to thaw or lease expiry), if it ended.
  std::optional<std::chrono::milliseconds> last_hold() const;
  // Waits up to `timeout` for `predicate` (checked under the agent's lock after every event).
  bool WaitUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) const;

  // A one-disk inventory: volume `volume` on disk `disk` with WWN `wwn`, plus a root volume
  // on a boot disk "vda" that is never snapshotted.
  static proto::Inventory SimpleInventory(const std::string& volume, const std::string& disk,
                                          const std::string& wwn);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace qb::testing
