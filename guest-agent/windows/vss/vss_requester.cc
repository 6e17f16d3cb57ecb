#include "guest-agent/windows/vss/vss_requester.h"

#include <algorithm>
#include <cctype>

#include "guest-agent/windows/windows_limits.h"

namespace qb::agent::win {

namespace {

std::string NormalizePath(std::string_view path) {
  std::string out;
  out.reserve(path.size() + 1);
  for (char c : path) {
    out.push_back(c == '/' ? '\\' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

Status Step(const char* name, Status status) {
  return status.ok() ? status : status.WithContext(name);
}

}  // namespace

bool PathOnMountPoints(const std::string& path, const std::vector<std::string>& mount_points) {
  const std::string p = NormalizePath(path);
  for (const auto& mount : mount_points) {
    std::string m = NormalizePath(mount);
    if (m.empty()) continue;
    if (m.back() != '\\') m.push_back('\\');
    if (p.size() >= m.size() && p.compare(0, m.size(), m) == 0) return true;
    if (p + "\\" == m) return true;  // the mount point itself
  }
  return false;
}

std::vector<proto::WriterResult> ToWriterResults(const std::vector<WriterStatus>& statuses,
                                                 const std::string& phase) {
  std::vector<proto::WriterResult> out;
  out.reserve(statuses.size());
  for (const auto& s : statuses) {
    proto::WriterResult r;
    r.name = s.name;
    r.kind = proto::WriterKind::kVssWriter;
    r.ok = !IsFailedState(s.state) && s.failure.empty();
    r.state = WriterStateName(s.state);
    r.output = s.failure;
    r.phase = phase;
    out.push_back(std::move(r));
  }
  return out;
}

VssRequester::VssRequester(VssBackupFactory& factory, ProviderLink& provider)
    : factory_(factory), provider_(provider) {}

bool VssRequester::holding() const { return holding_.load(); }

std::vector<proto::WriterResult> VssRequester::WriterResults(const std::string& phase) {
  auto statuses = backup_->GatherWriterStatus();
  if (!statuses.ok()) {
    proto::WriterResult r;
    r.name = "GatherWriterStatus";
    r.kind = proto::WriterKind::kVssWriter;
    r.state = "unknown";
    r.output = statuses.status().ToString();
    r.phase = phase;
    return {r};
  }
  return ToWriterResults(*statuses, phase);
}

void VssRequester::AbortLocked(const std::string& /*why*/) {
  provider_.Release(false);
  if (backup_ && async_started_) {
    Status ignored;
    if (backup_->QuerySnapshotSet(&ignored) == AsyncState::kPending) {
      (void)backup_->CancelSnapshotSet();
      (void)backup_->WaitSnapshotSet(kSnapshotSetFinishLimit);
    }
  }
  if (backup_ && prepared_) (void)backup_->AbortBackup();
  provider_.Disarm();
  backup_.reset();
  prepared_ = false;
  async_started_ = false;
  selected_.clear();
  frozen_volumes_.clear();
  holding_ = false;
}

Result<FreezeResult> VssRequester::Freeze(const FreezeSpec& spec) {
  std::lock_guard lock(mu_);
  if (holding_) return Error(Code::kBusy, "a VSS freeze is already held");
  if (spec.volumes.empty()) return Error(Code::kInvalidArgument, "no volume to freeze");
  // A lease that ran out before this Freeze started (its Thaw may have come and gone already).
  if (std::chrono::steady_clock::now() >= spec.deadline) {
    return Error(Code::kTimeout, "the lease ran out before the freeze started");
  }
  thaw_requested_ = false;
  prepared_ = false;
  async_started_ = false;
  selected_.clear();

  auto created = factory_.Create();
  if (!created.ok()) return created.status();
  backup_ = std::move(created).value();

  auto fail = [&](Status status) -> Result<FreezeResult> {
    AbortLocked(status.ToString());
    return status;
  };

  Status s = Step("InitializeForBackup", backup_->InitializeForBackup());
  if (!s.ok()) return fail(s);
  s = Step("SetBackupState", backup_->SetBackupState(spec.type));
  if (!s.ok()) return fail(s);
  s = backup_->SetContext(/*transportable=*/true);
  if (s.code() == Code::kUnsupported) s = backup_->SetContext(/*transportable=*/false);
  if (!s.ok()) return fail(s.WithContext("SetContext"));

  auto metadata = backup_->GatherWriterMetadata();
  if (!metadata.ok()) return fail(metadata.status().WithContext("GatherWriterMetadata"));
  std::vector<std::string> all_mounts;
  for (const auto& v : spec.volumes) {
    all_mounts.push_back(v.name);
    all_mounts.insert(all_mounts.end(), v.mount_points.begin(), v.mount_points.end());
  }
  FreezeResult result;
  for (const auto& writer : *metadata) {
    for (const auto& component : writer.components) {
      if (!component.selectable) continue;
      const bool on_volume =
          std::any_of(component.file_paths.begin(), component.file_paths.end(),
                      [&](const std::string& f) { return PathOnMountPoints(f, all_mounts); });
      if (!on_volume) continue;
      s = backup_->AddComponent(writer, component);
      if (!s.ok()) return fail(s.WithContext("AddComponent " + writer.name));
      selected_.push_back({writer, component});
      std::string path = component.logical_path.empty()
                             ? component.name
                             : component.logical_path + "\\" + component.name;
      result.selected_components.push_back(writer.name + ": " + path);
    }
  }

  auto set_id = backup_->StartSnapshotSet();
  if (!set_id.ok()) return fail(set_id.status().WithContext("StartSnapshotSet"));
  result.snapshot_set_id = *set_id;
  s = provider_.Arm(*set_id);
  if (!s.ok()) return fail(s.WithContext("arming the provider"));
  for (const auto& v : spec.volumes) {
    s = backup_->AddToSnapshotSet(v.name);
    if (!s.ok()) return fail(s.WithContext("AddToSnapshotSet " + v.name));
  }
  s = Step("PrepareForBackup", backup_->PrepareForBackup());
  if (!s.ok()) return fail(s);
  prepared_ = true;

  auto before = backup_->GatherWriterStatus();
  if (!before.ok()) return fail(before.status().WithContext("GatherWriterStatus"));
  result.writers = ToWriterResults(*before, "freeze");
  for (const auto& w : *before) {
    if (IsFailedState(w.state)) {
      return fail(Error(Code::kIoError, "writer " + w.name + " is " + WriterStateName(w.state) +
                                            (w.failure.empty() ? "" : " (" + w.failure + ")")));
    }
  }

  s = Step("DoSnapshotSet", backup_->DoSnapshotSet());
  if (!s.ok()) return fail(s);
  async_started_ = true;
  for (;;) {
    if (provider_.WaitHolding(kSnapshotSetPoll)) break;
    if (thaw_requested_) return fail(Error(Code::kCancelled, "thawed while freezing"));
    Status failure;
    AsyncState state = backup_->QuerySnapshotSet(&failure);
    if (state == AsyncState::kFailed || state == AsyncState::kCancelled) {
      return fail(failure.ok() ? Error(Code::kIoError, "DoSnapshotSet ended without a hold")
                               : failure.WithContext("DoSnapshotSet"));
    }
    if (state == AsyncState::kSucceeded) {
      return fail(Error(Code::kInternal, "DoSnapshotSet finished without our provider's hold"));
    }
    if (std::chrono::steady_clock::now() >= spec.deadline) {
      return fail(Error(Code::kTimeout, "the provider did not signal frozen before the lease end"));
    }
  }
  if (thaw_requested_) return fail(Error(Code::kCancelled, "thawed while freezing"));
  if (std::chrono::steady_clock::now() >= spec.deadline) {
    return fail(Error(Code::kTimeout, "the provider held writes only after the lease end"));
  }
  for (const auto& v : spec.volumes) frozen_volumes_.push_back(v.name);
  result.frozen_volumes = frozen_volumes_;
  holding_ = true;
  return result;
}

ThawResult VssRequester::Thaw(bool snapshot_ok) {
  thaw_requested_ = true;
  // Let go of the writes at once, even while a Freeze still owns the lock.
  provider_.Release(snapshot_ok);
  std::lock_guard lock(mu_);
  ThawResult result;
  if (!holding_ || !backup_) return result;
  result.was_frozen = true;
  result.thawed_volumes = frozen_volumes_;

  Status finished = backup_->WaitSnapshotSet(kSnapshotSetFinishLimit);
  result.hold_end = provider_.WaitHoldEnd(kSnapshotSetFinishLimit);
  if (snapshot_ok && finished.ok() && result.hold_end == HoldEnd::kCommitted) {
    bool all_marked = true;
    for (const auto& sel : selected_) {
      all_marked = backup_->SetBackupSucceeded(sel.writer, sel.component, true).ok() && all_marked;
    }
    Status complete = backup_->BackupComplete();
    result.backup_completed = complete.ok() && all_marked;
    if (!complete.ok()) result.not_held_reason = complete.WithContext("BackupComplete").ToString();
  } else {
    Status failure;
    if (backup_->QuerySnapshotSet(&failure) == AsyncState::kPending) {
      (void)backup_->CancelSnapshotSet();
      (void)backup_->WaitSnapshotSet(kSnapshotSetFinishLimit);
    }
    (void)backup_->AbortBackup();
  }
  result.writers = WriterResults("thaw");
  auto document = backup_->SaveAsXml();
  if (document.ok()) result.backup_document = std::move(document).value();

  // Verdict: the provider held until this Thaw released it, and no writer failed meanwhile.
  std::string reason;
  const bool released_by_us =
      result.hold_end == HoldEnd::kCommitted || result.hold_end == HoldEnd::kAborted;
  if (!released_by_us) {
    reason = std::string("provider hold ended: ") + HoldEndName(result.hold_end);
  } else if (!finished.ok() && snapshot_ok) {
    reason = "snapshot set failed: " + finished.ToString();
  }
  for (const auto& w : result.writers) {
    if (!w.ok && reason.empty()) reason = "writer " + w.name + " " + w.state;
  }
  result.held_whole_window = reason.empty();
  if (result.not_held_reason.empty()) result.not_held_reason = reason;

  provider_.Disarm();
  backup_.reset();
  prepared_ = false;
  async_started_ = false;
  selected_.clear();
  frozen_volumes_.clear();
  holding_ = false;
  return result;
}

std::string WriterStateName(WriterState state) {
  static const char* const kNames[] = {"VSS_WS_UNKNOWN",
                                       "VSS_WS_STABLE",
                                       "VSS_WS_WAITING_FOR_FREEZE",
                                       "VSS_WS_WAITING_FOR_THAW",
                                       "VSS_WS_WAITING_FOR_POST_SNAPSHOT",
                                       "VSS_WS_WAITING_FOR_BACKUP_COMPLETE",
                                       "VSS_WS_FAILED_AT_IDENTIFY",
                                       "VSS_WS_FAILED_AT_PREPARE_BACKUP",
                                       "VSS_WS_FAILED_AT_PREPARE_SNAPSHOT",
                                       "VSS_WS_FAILED_AT_FREEZE",
                                       "VSS_WS_FAILED_AT_THAW",
                                       "VSS_WS_FAILED_AT_POST_SNAPSHOT",
                                       "VSS_WS_FAILED_AT_BACKUP_COMPLETE",
                                       "VSS_WS_FAILED_AT_PRE_RESTORE",
                                       "VSS_WS_FAILED_AT_POST_RESTORE",
                                       "VSS_WS_FAILED_AT_BACKUPSHUTDOWN"};
  const auto i = static_cast<std::size_t>(state);
  if (i < std::size(kNames)) return kNames[i];
  return "VSS_WS_" + std::to_string(i);
}

bool IsFailedState(WriterState state) { return state >= WriterState::kFailedAtIdentify; }

}  // namespace qb::agent::win
