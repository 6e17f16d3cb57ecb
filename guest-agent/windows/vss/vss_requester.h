// The agent's VSS requester: one freeze = one backup, driven through the narrow VssBackup seam,
// with our provider holding writes in CommitSnapshots while the host cuts the array snapshot.
//
// Freeze, in this order (each step's failure aborts the backup, see below):
//   InitializeForBackup; SetBackupState(COPY by default, FULL on request); SetContext
//   (transportable, falling back to non-transportable on client SKUs); GatherWriterMetadata;
//   AddComponent for every selectable component with a file on a volume to freeze;
//   StartSnapshotSet; arm the provider for that set; AddToSnapshotSet per volume;
//   PrepareForBackup; GatherWriterStatus (a failed writer fails the freeze); DoSnapshotSet
//   asynchronously, polling QueryStatus until the provider signals it holds writes.
// Thaw:
//   release the provider (commit if the snapshot succeeded, else veto); wait for the async;
//   success -> SetBackupSucceeded per selected component, BackupComplete;
//   failure, or a Thaw without a snapshot -> Cancel the async if it is still pending, then
//   AbortBackup (an abort without cancel can hang inside VSS);
//   GatherWriterStatus again; SaveAsXML for the host's catalog.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "guest-agent/windows/vss/provider_hold.h"
#include "guest-agent/windows/vss/vss_backup.h"
#include "protocol/messages.h"

namespace qb::agent::win {

struct VolumeToFreeze {
  std::string name;                       // volume GUID path ("\\?\Volume{...}\")
  std::vector<std::string> mount_points;  // "C:\", "D:\Data\"
};

struct FreezeSpec {
  std::string job_id;
  std::vector<VolumeToFreeze> volumes;  // at least one
  BackupType type = BackupType::kCopy;
  // The provider must hold writes before this moment (the lease end), else the freeze fails.
  std::chrono::steady_clock::time_point deadline;
};

struct FreezeResult {
  std::string snapshot_set_id;
  std::vector<std::string> frozen_volumes;
  std::vector<proto::WriterResult> writers;      // phase "freeze", after PrepareForBackup
  std::vector<std::string> selected_components;  // "writer: logical\path\name"
};

struct ThawResult {
  bool was_frozen = false;  // a freeze was held (false: nothing to thaw)
  HoldEnd hold_end = HoldEnd::kNotEnded;
  bool backup_completed = false;             // BackupComplete succeeded (else AbortBackup ran)
  bool held_whole_window = false;            // the provider held until this Thaw, no writer failed
  std::string not_held_reason;               // why not ("" when held)
  std::vector<proto::WriterResult> writers;  // phase "thaw"
  std::string backup_document;               // SaveAsXML ("" if it failed)
  std::vector<std::string> thawed_volumes;
};

class VssRequester {
 public:
  // `factory` and `provider` must outlive the requester.
  VssRequester(VssBackupFactory& factory, ProviderLink& provider);

  // Blocking (worker thread). On success the provider holds writes on every volume of `spec`
  // until Thaw(). On failure nothing is held and the backup was aborted; codes: kUnsupported
  // (no VSS), kBusy (a freeze is already held), kTimeout (the provider did not signal before
  // spec.deadline), kCancelled (Thaw() was called meanwhile), kIoError (a VSS step failed, the
  // message names it).
  Result<FreezeResult> Freeze(const FreezeSpec& spec);

  // Ends the freeze (see the file comment). Blocking; callable from any thread, also while
  // Freeze() runs (that freeze then fails with kCancelled). Idempotent: with nothing held it
  // returns was_frozen = false.
  ThawResult Thaw(bool snapshot_ok);

  // True while a freeze is held (Freeze succeeded, no Thaw yet).
  bool holding() const;

 private:
  struct Selected {
    WriterMetadata writer;
    VssComponent component;
  };
  void AbortLocked(const std::string& why);
  std::vector<proto::WriterResult> WriterResults(const std::string& phase);

  VssBackupFactory& factory_;
  ProviderLink& provider_;
  std::mutex mu_;  // one Freeze or Thaw sequence at a time
  std::atomic<bool> thaw_requested_{false};
  std::atomic<bool> holding_{false};
  std::unique_ptr<VssBackup> backup_;
  bool prepared_ = false;       // PrepareForBackup succeeded
  bool async_started_ = false;  // DoSnapshotSet started
  std::vector<Selected> selected_;
  std::vector<std::string> frozen_volumes_;
};

// Writer statuses as protocol WriterResults (kind vssWriter).
std::vector<proto::WriterResult> ToWriterResults(const std::vector<WriterStatus>& statuses,
                                                 const std::string& phase);

// True if `path` lies under one of `mount_points` (case-insensitive, '/' and '\' alike).
bool PathOnMountPoints(const std::string& path, const std::vector<std::string>& mount_points);

}  // namespace qb::agent::win
