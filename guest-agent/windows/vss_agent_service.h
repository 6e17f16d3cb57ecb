// The Windows agent service: a Freeze is a VSS backup whose provider holds writes while the
// host snapshots the array (vss/vss_requester.h); a lease watchdog on its own thread
// (freeze_lease.h) thaws if the Thaw does not come in time.
//
// One job at a time. A job's life:
//   Freeze received (lease starts, watchdog armed) -> frozen mode (logs to memory) -> volumes
//   resolved against the inventory -> VSS freeze on the worker -> Frozen
//   ... Thaw received: requester Thaw on the worker (BackupComplete or AbortBackup) -> Thawed
//   ... or lease expired: the watchdog thread thaws at once (veto + Cancel + AbortBackup); the
//       late Thaw gets the stored verdict with leaseExpired and alreadyThawed.
// Freeze modes: vssCopy (and fsfreeze, the protocol's default value, treated as the platform
// default) -> VSS_BT_COPY; vssFull -> VSS_BT_FULL.
// The verdict ("held the whole window") is true only if the provider held writes from Frozen
// until this Thaw released it, the lease did not run out and no writer failed.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/logging.h"
#include "guest-agent/agent_service.h"
#include "guest-agent/windows/freeze_lease.h"
#include "guest-agent/windows/volume_inventory.h"
#include "guest-agent/windows/vss/vss_requester.h"
#include "guest-agent/windows/windows_limits.h"

namespace qb::agent::win {

struct VssAgentServiceOptions {
  std::string agent_version;
  proto::OsInfo os;
  // Lease when a Freeze asks for none, and the cap; both clamped to kDefaultLease (the most VSS
  // can hold with our margin).
  std::chrono::milliseconds default_lease = kDefaultLease;
  std::chrono::milliseconds lease_cap = kDefaultLease;
  // Process logger; frozen mode diverts it to memory. Null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

class VssAgentService final : public AgentService {
 public:
  // `requester` and `inventory` must outlive the service. Every method is called on `io`.
  VssAgentService(boost::asio::any_io_executor io, VssRequester& requester,
                  VolumeInventory& inventory, VssAgentServiceOptions options);
  // Thaws a freeze still held (as a lease expiry would), then joins the worker.
  ~VssAgentService() override;
  VssAgentService(const VssAgentService&) = delete;
  VssAgentService& operator=(const VssAgentService&) = delete;

  proto::HelloReply Hello() override;
  proto::AgentStatus Status() override;
  bool InFrozenMode() const override { return current_ != nullptr; }
  boost::asio::awaitable<proto::AgentBody> Inventory() override;
  // `request` is copied before the first suspension.
  boost::asio::awaitable<proto::AgentBody> Freeze(const proto::Freeze& request) override;
  boost::asio::awaitable<proto::AgentBody> Thaw(const proto::Thaw& request) override;

  // Ends the current job now, as a lease expiry would (service stop). Blocking; io thread.
  void Shutdown();

  // The lease granted for a request of `requested_ms` (0 = default).
  std::chrono::milliseconds GrantLease(std::uint32_t requested_ms) const;

 private:
  struct Job;
  proto::FreezeState State() const;
  proto::Thawed Verdict(const Job& job, const ThawResult& result, bool already_thawed) const;
  void FinishJob(const std::shared_ptr<Job>& job, proto::Thawed verdict);
  void OnLeaseExpired(const std::shared_ptr<Job>& job);

  boost::asio::any_io_executor io_;
  VssRequester& requester_;
  VolumeInventory& inventory_;
  VssAgentServiceOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  FreezeLease lease_;
  boost::asio::thread_pool worker_{1};
  std::shared_ptr<Job> current_;
  std::optional<FrozenModeLog> frozen_log_;
  std::map<std::string, proto::Thawed> finished_;
  std::deque<std::string> finished_order_;
  std::string last_job_id_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Guest monotonic clock in ns (steady_clock since its epoch).
std::uint64_t MonotonicNs(
    std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now());

}  // namespace qb::agent::win
