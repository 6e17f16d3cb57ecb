// A FAKE array backend for tests: an in-memory array with fault injection, in the spirit of
// leveldb's FaultInjectionTestEnv. It implements the real ArrayBackend contract (names from
// SnapshotName, all-or-nothing groups, missing = success on Remove) so job tests exercise the
// same paths a real array does, plus the failures a real array shows only on a bad day.
// Library qb_arrays_testing; never linked into the daemon.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "host-daemon/arrays/backend.h"

namespace qb::arrays::testing {

// What Snapshot() does about its deadline.
enum class DeadlineBehaviour {
  // Waits (delay, gate) at most until the deadline, then returns kTimeout with nothing created.
  kHonour,
  // Like an uninterruptible array call: finishes the whole delay, creates the snapshots and
  // returns success even when that is past the deadline.
  kOverrunAndSucceed,
  // Returns kTimeout at the deadline, but the snapshots land later on the "array" (a background
  // thread creates them when the delay has elapsed): FindByKey finds them afterwards.
  kTimeoutThenLandLater,
};

struct FaultPlan {
  // Time Snapshot() spends "on the array" before the cut (per call, not per LUN).
  std::chrono::milliseconds snapshot_delay{0};
  DeadlineBehaviour deadline_behaviour = DeadlineBehaviour::kHonour;
  // When not OK, Snapshot() fails with this status and creates nothing.
  Status snapshot_error = Status::Ok();
  // When >= 0: Snapshot() creates this many LUNs' snapshots, then fails with kArrayError
  // (a partial group). It then removes what it created, unless leave_partial_leftovers, in
  // which case it returns kPartial and the leftovers stay (FindByKey finds them).
  int fail_after_luns = -1;
  bool leave_partial_leftovers = false;
  // When not OK, these calls fail with the given status.
  Status resolve_error = Status::Ok();
  Status prepare_error = Status::Ok();
  Status find_error = Status::Ok();
  Status remove_error = Status::Ok();
  // What Prepare() projects; Prepare refuses with kTimeout when it exceeds the budget.
  std::chrono::milliseconds projected_cut{1};
};

struct CallCounts {
  int resolve = 0, prepare = 0, snapshot = 0, find = 0, list = 0, remove = 0, clone = 0,
      rollback = 0;
};

class FakeFaultBackend final : public ArrayBackend {
 public:
  // `name` is what name() returns. Every volume is accepted by Resolve unless
  // RestrictVolumes() was called.
  explicit FakeFaultBackend(std::string name = "fake",
                            Capabilities capabilities = {
                                .atomic_group = true, .clone = true, .rollback = true});
  // Joins background landings (cutting their delays short: they land at once).
  ~FakeFaultBackend() override;

  // --- Test control --------------------------------------------------------------------------
  void SetFaults(const FaultPlan& plan);
  // Only these volumes exist; Resolve/Snapshot of others give kNotFound.
  void RestrictVolumes(std::set<std::string> volumes);
  // While closed, Snapshot() blocks after counting the call (before creating anything) until
  // OpenGate() or its deadline (kHonour) — explicit synchronisation for tests, no sleeps.
  void CloseGate();
  void OpenGate();
  // Blocks until Snapshot() has been entered at least `calls` times in total or `timeout`
  // passed; returns whether it was.
  bool WaitForSnapshotCalls(int calls, std::chrono::milliseconds timeout);
  // Blocks until every kTimeoutThenLandLater landing has happened or `timeout` passed.
  bool WaitForLateLandings(std::chrono::milliseconds timeout);

  CallCounts counts() const;
  // Every snapshot currently on the fake array, in creation order.
  std::vector<SnapshotRecord> AllSnapshots() const;
  // Rollbacks performed, as (lun, array_name).
  std::vector<std::pair<std::string, std::string>> Rollbacks() const;

  // --- ArrayBackend --------------------------------------------------------------------------
  const std::string& name() const override { return name_; }
  Capabilities capabilities() const override { return capabilities_; }
  Status Resolve(const LunSpec& lun) override;
  Result<PrepareReport> Prepare(const std::vector<LunSpec>& luns,
                                std::chrono::milliseconds budget) override;
  Result<std::vector<SnapshotRecord>> Snapshot(
      const std::vector<LunSpec>& luns, const std::string& job_key,
      std::chrono::steady_clock::time_point deadline) override;
  Result<std::vector<SnapshotRecord>> FindByKey(const std::vector<LunSpec>& luns,
                                                const std::string& job_key) override;
  Result<std::vector<SnapshotRecord>> List(const LunSpec& lun) override;
  Status Remove(const SnapshotRecord& snapshot) override;
  Result<std::string> Clone(const SnapshotRecord& snapshot, const std::string& new_name) override;
  Status Rollback(const SnapshotRecord& snapshot) override;

 private:
  SnapshotRecord MakeRecordLocked(const LunSpec& lun, const std::string& job_key) const;
  bool VolumeExistsLocked(const std::string& volume) const;

  const std::string name_;
  const Capabilities capabilities_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  FaultPlan plan_;
  bool restrict_volumes_ = false;
  std::set<std::string> volumes_;
  bool gate_open_ = true;
  bool shutting_down_ = false;
  int pending_landings_ = 0;
  CallCounts counts_;
  std::vector<SnapshotRecord> snapshots_;  // creation order; array_name unique
  std::set<std::string> clones_;
  std::vector<std::pair<std::string, std::string>> rollbacks_;
  std::vector<std::thread> landings_;
};

}  // namespace qb::arrays::testing
