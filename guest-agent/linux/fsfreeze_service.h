// The Linux agent service: hooks + FIFREEZE/FITHAW with a freeze lease, a thaw guard process
// and a crash record, plus the sysfs inventory.
//
// One freeze job at a time. A job's life:
//   Freeze received (lease starts) -> freeze hooks (name order; the crash record names each
//   one as it starts and ends) -> open mount points -> crash record (+ mount points) -> thaw
//   guard armed -> frozen mode (logs to memory) -> FIFREEZE (reverse mount order) -> Frozen
//   ... Thaw received or lease expired ->
//   FITHAW (mount order) -> guard dismissed -> logs flushed -> record keeps only the hooks
//   owed a thaw -> thaw hooks (reverse name order) -> record removed -> verdict.
// Blocking steps run on a private worker thread; the io thread stays free, so Status, Ping and
// Thaw are answered while a FIFREEZE blocks.
//
// The verdict ("held the whole window") is true only if the Frozen reply went out, the Thaw
// arrived before the lease ran out, every FITHAW found its file system still frozen (nobody
// thawed behind our back, no guard thaw), and every hook succeeded.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/status.h"
#include "common/time_limits.h"
#include "guest-agent/agent_service.h"
#include "guest-agent/async_mutex.h"
#include "guest-agent/linux/freeze_record.h"
#include "guest-agent/linux/hook_runner.h"
#include "guest-agent/linux/inventory.h"
#include "guest-agent/linux/thaw_guard.h"

namespace qb::agent {

struct FsFreezeServiceOptions {
  std::string mountinfo_path = "/proc/self/mountinfo";
  std::string sysfs_root = "/sys";
  std::string run_dir = "/run/quiesce-agent";
  std::string hooks_dir = "/etc/quiesce-agent/hooks.d";
  std::chrono::milliseconds hook_timeout = limits::kDefaultHookTimeout;
  // Lease granted when a Freeze asks for none, and the most the agent grants. Both are clamped
  // to limits::kMaxLease.
  std::chrono::milliseconds default_lease = limits::kDefaultLease;
  std::chrono::milliseconds lease_cap = limits::kDefaultLease;
  std::string agent_version;
  // The process logger; frozen mode diverts it to memory. Null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

class FsFreezeService final : public AgentService {
 public:
  // `io` is the process's io_context executor; every method must be called on it.
  FsFreezeService(boost::asio::any_io_executor io, FsFreezeServiceOptions options);
  // Joins the worker. A freeze still held is thawed (the guard is dismissed afterwards).
  ~FsFreezeService() override;
  FsFreezeService(const FsFreezeService&) = delete;
  FsFreezeService& operator=(const FsFreezeService&) = delete;

  // Thaws whatever a previous agent left frozen (its crash record) and remembers it for
  // HelloReply.staleFreezeCleared, then runs `thaw` for every hook whose `freeze` the record
  // says started, in reverse name order, with QUIESCE_SNAPSHOT_OK=0 and QUIESCE_RECOVERY=1.
  // Call once before serving. Blocks: FITHAW, then those hooks (each up to its timeout).
  qb::Status RecoverStaleFreeze();

  // Ends the current job, if any, as if its lease had run out now (shutdown, SIGTERM).
  boost::asio::awaitable<void> Shutdown();

  proto::HelloReply Hello() override;
  proto::AgentStatus Status() override;
  bool InFrozenMode() const override { return current_ != nullptr; }
  boost::asio::awaitable<proto::AgentBody> Inventory() override;
  boost::asio::awaitable<proto::AgentBody> Freeze(const proto::Freeze& request) override;
  boost::asio::awaitable<proto::AgentBody> Thaw(const proto::Thaw& request) override;
  // Replays the ended job's frozen-mode log and replaces its thaw guard (see RunDeferred).
  void AfterReply() override { RunDeferred(); }

  // The lease the agent grants for a request of `requested_ms` (0 = default).
  std::chrono::milliseconds GrantLease(std::uint32_t requested_ms) const;

 private:
  struct Job;
  enum class EndCause { kThaw, kLeaseExpired, kShutdown };

  proto::FreezeState State() const;
  boost::asio::awaitable<void> WatchLease(std::shared_ptr<Job> job);
  // Ends `job` (must hold op_lock_). Returns the verdict; also stored in finished_.
  boost::asio::awaitable<proto::Thawed> EndJob(const std::shared_ptr<Job>& job, EndCause cause,
                                               bool snapshot_ok);
  // Undoes a freeze that failed before Frozen: thaw hooks, guard, record. Returns the error.
  boost::asio::awaitable<proto::AgentBody> AbortFreeze(const std::shared_ptr<Job>& job,
                                                       proto::ErrorCode code,
                                                       const std::string& message);
  // Reaps `retired` (a dismissed guard) and spawns the next idle guard on the worker; keeps it
  // as spare_guard_ unless one is there already.
  boost::asio::awaitable<void> ReplenishGuard(std::shared_ptr<ThawGuard> retired);
  // Work EndJob leaves for after the Thawed reply: the job's frozen-mode log (replayed to the
  // log files when released) and its dismissed guard (reaped, and a spare spawned, on the
  // worker). Runs before the next Freeze at the latest, so frozen-mode logs never nest.
  void RunDeferred();
  void Remember(const proto::Thawed& verdict);
  HookOptions hook_options() const;
  // After the mount points are thawed: the record names only the hooks still owed a `thaw`
  // (removed when there are none).
  qb::Status KeepHooksOwedThaw(const std::string& job_id,
                               const std::vector<std::string>& hooks_ran) const;

  boost::asio::any_io_executor io_;
  FsFreezeServiceOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  FreezeRecordFile record_;
  boost::asio::thread_pool worker_{1};
  AsyncMutex op_lock_;
  std::shared_ptr<Job> current_;
  // A job past its last FITHAW whose thaw hooks and verdict are still being produced: a Thaw
  // for it waits for the verdict instead of finding no job.
  std::shared_ptr<Job> ending_;
  std::map<std::string, proto::Thawed> finished_;
  std::deque<std::string> finished_order_;
  std::string last_job_id_;
  proto::StaleFreeze stale_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  // An idle thaw guard forked ahead of time (io thread only): Freeze arms it instead of forking.
  std::optional<ThawGuard> spare_guard_;
  bool replenishing_ = false;
  struct Deferred {
    std::unique_ptr<FrozenModeLog> log;
    std::shared_ptr<ThawGuard> retired;
    std::shared_ptr<Job> job;  // for its timing line (debug)
  };
  std::vector<Deferred> deferred_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // for detached coroutines
};

}  // namespace qb::agent
