#include "host-daemon/arrays/testing/fault_backend.h"

#include <algorithm>

namespace qb::arrays::testing {

FakeFaultBackend::FakeFaultBackend(std::string name, Capabilities capabilities)
    : name_(std::move(name)), capabilities_(capabilities) {}

FakeFaultBackend::~FakeFaultBackend() {
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    gate_open_ = true;
  }
  changed_.notify_all();
  for (auto& landing : landings_) landing.join();
}

void FakeFaultBackend::SetFaults(const FaultPlan& plan) {
  std::lock_guard lock(mutex_);
  plan_ = plan;
}

void FakeFaultBackend::RestrictVolumes(std::set<std::string> volumes) {
  std::lock_guard lock(mutex_);
  restrict_volumes_ = true;
  volumes_ = std::move(volumes);
}

void FakeFaultBackend::CloseGate() {
  std::lock_guard lock(mutex_);
  gate_open_ = false;
}

void FakeFaultBackend::OpenGate() {
  {
    std::lock_guard lock(mutex_);
    gate_open_ = true;
  }
  changed_.notify_all();
}

bool FakeFaultBackend::WaitForSnapshotCalls(int calls, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return counts_.snapshot >= calls; });
}

bool FakeFaultBackend::WaitForLateLandings(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return pending_landings_ == 0; });
}

CallCounts FakeFaultBackend::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

std::vector<SnapshotRecord> FakeFaultBackend::AllSnapshots() const {
  std::lock_guard lock(mutex_);
  return snapshots_;
}

std::vector<std::pair<std::string, std::string>> FakeFaultBackend::Rollbacks() const {
  std::lock_guard lock(mutex_);
  return rollbacks_;
}

bool FakeFaultBackend::VolumeExistsLocked(const std::string& volume) const {
  return !restrict_volumes_ || volumes_.count(volume) != 0;
}

SnapshotRecord FakeFaultBackend::MakeRecordLocked(const LunSpec& lun,
                                                  const std::string& job_key) const {
  return SnapshotRecord{.lun = lun.volume,
                        .array_name = SnapshotName(job_key, lun.volume),
                        .job_key = job_key,
                        .backend = name_,
                        .created = std::chrono::system_clock::now()};
}

Status FakeFaultBackend::Resolve(const LunSpec& lun) {
  std::lock_guard lock(mutex_);
  ++counts_.resolve;
  if (!plan_.resolve_error.ok()) return plan_.resolve_error;
  if (lun.volume.empty()) return Error(Code::kInvalidArgument, "empty volume");
  if (!VolumeExistsLocked(lun.volume)) {
    return Error(Code::kNotFound, "fake array has no volume '" + lun.volume + "'");
  }
  return Status::Ok();
}

Result<PrepareReport> FakeFaultBackend::Prepare(const std::vector<LunSpec>& luns,
                                                std::chrono::milliseconds budget) {
  std::lock_guard lock(mutex_);
  ++counts_.prepare;
  if (!plan_.prepare_error.ok()) return plan_.prepare_error;
  PrepareReport report;
  report.projected_cut = plan_.projected_cut;
  for (const auto& lun : luns) {
    if (!VolumeExistsLocked(lun.volume)) {
      return Error(Code::kNotFound, "fake array has no volume '" + lun.volume + "'");
    }
    report.extent_counts.emplace_back(lun.volume, 0);
  }
  if (report.projected_cut > budget) {
    return Error(Code::kTimeout, "projected cut " + std::to_string(report.projected_cut.count()) +
                                     " ms exceeds budget " + std::to_string(budget.count()) +
                                     " ms");
  }
  return report;
}

Result<std::vector<SnapshotRecord>> FakeFaultBackend::Snapshot(
    const std::vector<LunSpec>& luns, const std::string& job_key,
    std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  ++counts_.snapshot;
  changed_.notify_all();
  QB_RETURN_IF_ERROR(ValidateJobKey(job_key));
  const FaultPlan plan = plan_;
  const auto started = std::chrono::steady_clock::now();
  const auto ready_at = started + plan.snapshot_delay;
  const bool honour = plan.deadline_behaviour == DeadlineBehaviour::kHonour;
  const auto wait_until = honour ? std::min(deadline, ready_at) : ready_at;
  const auto gate_passable = [&] { return gate_open_ || shutting_down_; };
  if (honour) {
    changed_.wait_until(lock, deadline, gate_passable);
  } else {
    changed_.wait(lock, gate_passable);
  }
  if (!gate_open_) return Error(Code::kTimeout, "fake array: deadline passed at closed gate");

  if (plan.deadline_behaviour == DeadlineBehaviour::kTimeoutThenLandLater && ready_at > deadline) {
    changed_.wait_until(lock, deadline, [&] { return shutting_down_; });
    std::vector<SnapshotRecord> late;
    for (const auto& lun : luns) late.push_back(MakeRecordLocked(lun, job_key));
    ++pending_landings_;
    landings_.emplace_back([this, late = std::move(late), ready_at]() mutable {
      std::unique_lock landing_lock(mutex_);
      changed_.wait_until(landing_lock, ready_at, [&] { return shutting_down_; });
      for (auto& record : late) {
        record.created = std::chrono::system_clock::now();
        snapshots_.push_back(std::move(record));
      }
      --pending_landings_;
      changed_.notify_all();
    });
    return Error(Code::kTimeout, "fake array: snapshot still in flight at the deadline");
  }

  changed_.wait_until(lock, wait_until, [&] { return shutting_down_; });
  if (honour && std::chrono::steady_clock::now() >= deadline && ready_at > deadline) {
    return Error(Code::kTimeout, "fake array: deadline passed before the cut");
  }
  if (!plan.snapshot_error.ok()) return plan.snapshot_error;

  std::vector<SnapshotRecord> created;
  for (std::size_t i = 0; i < luns.size(); ++i) {
    if (plan.fail_after_luns >= 0 && static_cast<int>(i) >= plan.fail_after_luns) {
      if (plan.leave_partial_leftovers) {
        return Error(Code::kPartial, "fake array: group failed after " + std::to_string(i) +
                                         " LUNs; leftovers stay");
      }
      for (const auto& record : created) {
        std::erase_if(snapshots_,
                      [&](const SnapshotRecord& s) { return s.array_name == record.array_name; });
      }
      return Error(Code::kArrayError,
                   "fake array: group failed after " + std::to_string(i) + " LUNs");
    }
    if (!VolumeExistsLocked(luns[i].volume)) {
      for (const auto& record : created) {
        std::erase_if(snapshots_,
                      [&](const SnapshotRecord& s) { return s.array_name == record.array_name; });
      }
      return Error(Code::kNotFound, "fake array has no volume '" + luns[i].volume + "'");
    }
    SnapshotRecord record = MakeRecordLocked(luns[i], job_key);
    const bool exists = std::any_of(snapshots_.begin(), snapshots_.end(), [&](const auto& s) {
      return s.array_name == record.array_name;
    });
    if (exists) {
      for (const auto& made : created) {
        std::erase_if(snapshots_,
                      [&](const SnapshotRecord& s) { return s.array_name == made.array_name; });
      }
      return Error(Code::kConflict, "fake array: snapshot " + record.array_name + " exists");
    }
    snapshots_.push_back(record);
    created.push_back(std::move(record));
  }
  return created;
}

Result<std::vector<SnapshotRecord>> FakeFaultBackend::FindByKey(const std::vector<LunSpec>& luns,
                                                                const std::string& job_key) {
  std::lock_guard lock(mutex_);
  ++counts_.find;
  if (!plan_.find_error.ok()) return plan_.find_error;
  std::vector<SnapshotRecord> found;
  for (const auto& lun : luns) {
    const std::string want = SnapshotName(job_key, lun.volume);
    for (const auto& s : snapshots_) {
      if (s.array_name == want) found.push_back(s);
    }
  }
  return found;
}

Result<std::vector<SnapshotRecord>> FakeFaultBackend::List(const LunSpec& lun) {
  std::lock_guard lock(mutex_);
  ++counts_.list;
  std::vector<SnapshotRecord> found;
  for (const auto& s : snapshots_) {
    if (s.lun == lun.volume) found.push_back(s);
  }
  return found;
}

Status FakeFaultBackend::Remove(const SnapshotRecord& snapshot) {
  std::lock_guard lock(mutex_);
  ++counts_.remove;
  if (!plan_.remove_error.ok()) return plan_.remove_error;
  std::erase_if(snapshots_,
                [&](const SnapshotRecord& s) { return s.array_name == snapshot.array_name; });
  return Status::Ok();
}

Result<std::string> FakeFaultBackend::Clone(const SnapshotRecord& snapshot,
                                            const std::string& new_name) {
  std::lock_guard lock(mutex_);
  ++counts_.clone;
  if (!capabilities_.clone) return Error(Code::kUnsupported, "fake array: clone disabled");
  const bool exists = std::any_of(snapshots_.begin(), snapshots_.end(), [&](const auto& s) {
    return s.array_name == snapshot.array_name;
  });
  if (!exists) return Error(Code::kNotFound, "fake array: no snapshot " + snapshot.array_name);
  if (!clones_.insert(new_name).second) {
    return Error(Code::kConflict, "fake array: volume " + new_name + " exists");
  }
  return new_name;
}

Status FakeFaultBackend::Rollback(const SnapshotRecord& snapshot) {
  std::lock_guard lock(mutex_);
  ++counts_.rollback;
  if (!capabilities_.rollback) return Error(Code::kUnsupported, "fake array: rollback disabled");
  const bool exists = std::any_of(snapshots_.begin(), snapshots_.end(), [&](const auto& s) {
    return s.array_name == snapshot.array_name;
  });
  if (!exists) return Error(Code::kNotFound, "fake array: no snapshot " + snapshot.array_name);
  rollbacks_.emplace_back(snapshot.lun, snapshot.array_name);
  return Status::Ok();
}

}  // namespace qb::arrays::testing
