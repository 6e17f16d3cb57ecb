// JobRunner: the snapshot job state machine of DESIGN.md, plus the catalog-backed admin
// operations (delete, expose, rollback, prune, reconcile, emergency thaw).
//
//   plan -> journal (catalog BeginJob) -> prepare -> freeze (all guests in parallel) ->
//   snapshot (one call per backend on the worker pool, deadline inside the lease) ->
//   thaw (ALWAYS: error, exception, timeout, cancellation, shutdown) -> verify -> record.
//
// A snapshot is labelled application-consistent only through Catalog::RecordJob with
// evidence (rows, label and the job's end in one transaction), and only when every backend call
// returned success before the first Thaw was sent and every agent reported heldWholeWindow
// (invariant 2). If the array call outlives its deadline the guests are thawed at once
// (snapshotOk=false); when the call lands later its snapshots are removed or recorded
// crash-consistent (LatePolicy). The job is recorded failed in the catalog when it returns, with a
// note that its array call is late; a daemon killed before the late snapshot was handled handles it
// in Reconcile().
//
// Threading: every method must be called from the io thread of a single-threaded io_context
// (the daemon runs one). Blocking calls (backends, catalog) run on `workers`.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "host-daemon/arrays/backend.h"
#include "host-daemon/catalog/catalog.h"
#include "host-daemon/jobs/guest_registry.h"
#include "protocol/control_messages.h"

namespace qb::jobs {

namespace asio = boost::asio;

// What happens to a snapshot that lands after its deadline (or is found after a crash).
enum class LatePolicy { kRemove, kCrashConsistent };

struct RetentionRule {
  std::optional<std::uint32_t> keep_last;
  std::optional<std::chrono::seconds> max_age;
};

struct JobRunnerOptions {
  LatePolicy late_policy = LatePolicy::kRemove;
  std::map<std::string, std::vector<std::string>> groups;  // group name -> VM names
  std::map<std::string, RetentionRule> retention;  // VM or group name ("*" = default) -> rule
  std::chrono::milliseconds request_timeout = limits::kRequestTimeout;  // inventory, thaw
  // After a backend call gave up at its deadline (kTimeout), the snapshot may still land on
  // the array: the job looks for it by key this long after the thaw and applies LatePolicy.
  std::chrono::milliseconds late_sweep_delay = limits::kRequestTimeout;
};

class JobRunner {
 public:
  // All references must outlive the runner. `io` must be single-threaded; `workers` is the
  // pool for blocking calls.
  JobRunner(asio::any_io_executor io, asio::any_io_executor workers, arrays::BackendSet& backends,
            catalog::Catalog& catalog, GuestRegistry& guests, JobRunnerOptions options);
  ~JobRunner();

  // Runs one job for request.vms (several = a group job) or request.group. Never throws; the
  // report's error_code is a qb::Code (0 = application-consistent snapshot recorded).
  // kBusy when a VM already has a job; kNotFound for an unknown VM or group; kCancelled while
  // shutting down.
  asio::awaitable<proto::JobReport> Snapshot(proto::SnapshotRequest request);

  // A guest's agent opened a session reporting that it is frozen for `state.job_id` (its
  // HelloReply). When that job is running in the catalog journal, is not one of this runner's
  // own jobs, and `vm` is among the job's VMs, it was left by a daemon that died mid-job: the
  // guest is thawed now (Thaw with snapshotOk=false) instead of at the end of its lease.
  // Labels are never changed here (Reconcile closes the job). A job the catalog does not know,
  // or one not running, is logged and left to the agent's lease. Needs the instance lock
  // (quiesced's InstanceLock): another live daemon's jobs are running in the journal too.
  asio::awaitable<void> ThawLeftoverFreeze(std::string vm, proto::FreezeState state);

  // Emergency thaw: asks the agent for its freeze state and thaws the job it reports.
  // Returns what was done ("thawed job X" or "not frozen").
  asio::awaitable<Result<std::string>> Thaw(std::string vm);

  // First finishes the removals a previous daemon journaled but did not complete (rows in
  // state deleting: delete, retention, a failed group's members). Then closes jobs a previous
  // daemon left running: finds their snapshots by key on the LUNs each job journaled when it
  // began (today's configuration only for jobs journaled without LUNs) and applies LatePolicy
  // to those that have no row (recorded crash-consistent, or removed); a snapshot that has a
  // row is never removed or relabelled, and nothing is ever promoted. Failed jobs
  // of the last 24 h whose array call was late get the same sweep (they stay failed). Two passes,
  // late_sweep_delay apart: an array call of the dead daemon may still be in flight and land
  // between them. Jobs are closed (state reconciled) only in the second pass, so a daemon
  // killed again meanwhile reconciles them anew. Completes after the second pass.
  asio::awaitable<Status> Reconcile();

  // Applies retention to `vm` ("" = every VM); returns the snapshots removed.
  asio::awaitable<Result<std::vector<catalog::SnapshotRow>>> Prune(std::string vm);
  // Journals the removal (row state deleting), removes the snapshot from the array, then the
  // row; a daemon killed in between finishes it in Reconcile(). kNotFound if unknown.
  asio::awaitable<Status> DeleteSnapshot(std::string snapshot_id);
  // Clones a snapshot to a new volume; returns its identifier.
  asio::awaitable<Result<std::string>> Expose(std::string snapshot_id, std::string as_name);
  // Reverts the VM's LUN to the snapshot. kPermissionDenied while the VM runs (its agent link
  // is connected) or a job owns it.
  asio::awaitable<Status> Rollback(std::string vm, std::string snapshot_id);

  asio::awaitable<Result<std::vector<proto::JobReport>>> ListJobs(int limit);
  asio::awaitable<Result<std::vector<proto::SnapshotInfo>>> ListSnapshots(std::string vm);

  // The job that owns `vm` now, or "".
  std::string BusyJob(const std::string& vm) const;
  std::size_t running_jobs() const { return running_jobs_; }

  // Refuses new jobs, cuts running jobs' waits short (they thaw with snapshotOk=false), and
  // returns when no job is running any more. A job is checked for stopping before each step
  // (plan, inventory, journal, resolve, prepare, freeze, snapshot): one stopped before its
  // freeze ends with kCancelled "daemon stopping" and runs no further step.
  asio::awaitable<void> Shutdown();

  struct JobState;  // one job's working state (job_runner.cc)

 private:
  asio::awaitable<void> RunJob(const std::shared_ptr<JobState>& job);
  asio::awaitable<void> Plan(const std::shared_ptr<JobState>& job);
  asio::awaitable<void> FreezeAll(const std::shared_ptr<JobState>& job);
  asio::awaitable<void> SnapshotAll(const std::shared_ptr<JobState>& job);
  asio::awaitable<void> ThawAll(const std::shared_ptr<JobState>& job, bool snapshot_ok);
  asio::awaitable<void> Record(const std::shared_ptr<JobState>& job);
  asio::awaitable<void> ApplyRetention(std::vector<std::string> vms);
  asio::awaitable<Status> FinishLate(const std::shared_ptr<JobState>& job);
  // True (and the job failed kCancelled) when Shutdown has begun: the job takes no next step.
  bool StopRequested(const std::shared_ptr<JobState>& job);
  std::optional<RetentionRule> RuleFor(const std::string& vm) const;
  // Blocking (worker pool): removes a row's snapshot (row already in state deleting) from the
  // array, then the row; on an array error the row is put back to present.
  Status RemoveJournaled(arrays::ArrayBackend& backend, const catalog::SnapshotRow& row);
  // A backend call that returned after its job stopped waiting (or a sweep's findings): applies
  // LatePolicy and closes the job in the catalog when the last one is handled.
  void HandleLateSnapshot(std::shared_ptr<JobState> job, std::string backend,
                          Result<std::vector<arrays::SnapshotRecord>> result,
                          bool from_sweep = false);
  // Looks for `backend`'s snapshots of the job by key after late_sweep_delay.
  void ScheduleSweep(std::shared_ptr<JobState> job, std::string backend);
  std::string NewJobKey();

  asio::any_io_executor io_;
  asio::any_io_executor workers_;
  arrays::BackendSet& backends_;
  catalog::Catalog& catalog_;
  GuestRegistry& guests_;
  JobRunnerOptions options_;
  std::map<std::string, std::string> busy_;  // vm -> job key
  std::set<std::shared_ptr<JobState>> running_;
  std::size_t running_jobs_ = 0;
  bool stopping_ = false;
  std::uint64_t job_counter_ = 0;
  asio::steady_timer idle_;  // cancelled when the last job ends (Shutdown waits on it)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // late worker results check it
};

}  // namespace qb::jobs
