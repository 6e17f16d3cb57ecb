// The narrow seam between the VSS requester's logic and VSS itself (IVssBackupComponents).
// One VssBackup is one backup: VSS allows one pass through the sequence per components object,
// so the requester asks the factory for a fresh one per Freeze.
//
// Nothing COM crosses this header: no HRESULT, BSTR, GUID or interface pointer. A failed call is a
// Status whose message carries the VSS error name and its hex code ("VSS_E_BAD_STATE
// 0x80042301"); kUnsupported means "not supported on this system" (e.g. SetContext on a client
// SKU), kTimeout an async step that did not finish in time.
//
// The real implementation (vss_com.cc) is the only COM code of the agent; tests use FakeVss
// (vss/testing/fake_vss.h), which enforces the call order VSS requires.
//
// Threading: a VssBackup is used by one thread at a time (the requester's worker), except
// CancelSnapshotSet(), which may be called from any thread while WaitSnapshotSet() runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace qb::agent::win {

// VSS_BACKUP_TYPE values the agent uses.
enum class BackupType : std::uint8_t {
  kCopy,  // VSS_BT_COPY: writers keep their logs (default)
  kFull,  // VSS_BT_FULL: SQL Server / Exchange truncate logs after BackupComplete
};

// VSS_WRITER_STATE, same numbering.
enum class WriterState : std::uint8_t {
  kUnknown = 0,
  kStable = 1,
  kWaitingForFreeze = 2,
  kWaitingForThaw = 3,
  kWaitingForPostSnapshot = 4,
  kWaitingForBackupComplete = 5,
  kFailedAtIdentify = 6,
  kFailedAtPrepareBackup = 7,
  kFailedAtPrepareSnapshot = 8,
  kFailedAtFreeze = 9,
  kFailedAtThaw = 10,
  kFailedAtPostSnapshot = 11,
  kFailedAtBackupComplete = 12,
  kFailedAtPreRestore = 13,
  kFailedAtPostRestore = 14,
  kFailedAtBackupShutdown = 15,
};

// "VSS_WS_STABLE", ...; "VSS_WS_<n>" for values outside the enum.
std::string WriterStateName(WriterState state);
// True for the VSS_WS_FAILED_AT_* states.
bool IsFailedState(WriterState state);

// VSS_COMPONENT_TYPE values.
enum class ComponentType : std::uint8_t { kDatabase = 1, kFileGroup = 2 };

// A component a writer reports in its metadata.
struct VssComponent {
  std::string logical_path;             // may be empty
  std::string name;                     // component name
  bool selectable = true;               // may be added to a backup on its own
  std::vector<std::string> file_paths;  // directories / file specs (env vars expanded)
  ComponentType type = ComponentType::kDatabase;
};

struct WriterMetadata {
  std::string writer_id;    // writer class id, text form "{...}"
  std::string instance_id;  // writer instance id, text form
  std::string name;         // "SqlServerWriter"
  std::vector<VssComponent> components;
};

struct WriterStatus {
  std::string writer_id;
  std::string instance_id;
  std::string name;
  WriterState state = WriterState::kUnknown;
  std::string failure;  // "" when the writer reported no failure, else "NAME 0xXXXXXXXX"
};

// The state of the DoSnapshotSet asynchronous operation.
enum class AsyncState : std::uint8_t {
  kPending,    // still running (writers freezing, provider committing)
  kSucceeded,  // the snapshot set exists
  kFailed,     // finished with an error (see the Status of WaitSnapshotSet / QuerySnapshotSet)
  kCancelled,  // finished because CancelSnapshotSet() was called
};

class VssBackup {
 public:
  virtual ~VssBackup() = default;

  // IVssBackupComponents::InitializeForBackup. First call, once.
  virtual Status InitializeForBackup() = 0;
  // SetBackupState(selectComponents=true, bootableSystemState=false, type,
  // partialFileSupport=false).
  virtual Status SetBackupState(BackupType type) = 0;
  // SetContext(VSS_CTX_APP_ROLLBACK | NO_AUTORECOVERY | TXF_RECOVERY [| TRANSPORTABLE]).
  // kUnsupported: this SKU refuses the context (client Windows refuses TRANSPORTABLE).
  virtual Status SetContext(bool transportable) = 0;
  // GatherWriterMetadata, waits for its async, then reads every writer's metadata.
  virtual Result<std::vector<WriterMetadata>> GatherWriterMetadata() = 0;
  // AddComponent for `component` of `writer` (from GatherWriterMetadata).
  virtual Status AddComponent(const WriterMetadata& writer, const VssComponent& component) = 0;
  // StartSnapshotSet; returns the set id in text form "{...}".
  virtual Result<std::string> StartSnapshotSet() = 0;
  // AddToSnapshotSet(volume, our provider id). `volume` is a volume GUID path or mount point.
  virtual Status AddToSnapshotSet(const std::string& volume) = 0;
  // PrepareForBackup, waits for its async.
  virtual Status PrepareForBackup() = 0;
  // GatherWriterStatus, waits for its async, reads every writer's status, FreeWriterStatus.
  virtual Result<std::vector<WriterStatus>> GatherWriterStatus() = 0;
  // DoSnapshotSet: starts the async and returns at once. The provider's CommitSnapshots runs
  // while it is pending.
  virtual Status DoSnapshotSet() = 0;
  // IVssAsync::QueryStatus of the DoSnapshotSet async. A kFailed state sets *failure.
  virtual AsyncState QuerySnapshotSet(Status* failure) = 0;
  // IVssAsync::Wait(timeout). OK when the set succeeded; kTimeout while still pending; the
  // set's error (or kCancelled) when it finished otherwise.
  virtual Status WaitSnapshotSet(std::chrono::milliseconds timeout) = 0;
  // IVssAsync::Cancel of the DoSnapshotSet async. Must precede AbortBackup while the async is
  // pending (an abort without it can hang inside VSS).
  virtual Status CancelSnapshotSet() = 0;
  // SetBackupSucceeded(instance, writer, component type, logical path, name, succeeded).
  virtual Status SetBackupSucceeded(const WriterMetadata& writer, const VssComponent& component,
                                    bool succeeded) = 0;
  // BackupComplete, waits for its async (writers run OnBackupComplete; FULL: log truncation).
  virtual Status BackupComplete() = 0;
  // AbortBackup: writers run OnAbort.
  virtual Status AbortBackup() = 0;
  // SaveAsXML: the backup components document.
  virtual Result<std::string> SaveAsXml() = 0;
};

// Creates one VssBackup per backup (CreateVssBackupComponents).
class VssBackupFactory {
 public:
  virtual ~VssBackupFactory() = default;
  // kUnsupported when VSS is not available (Wine: E_NOTIMPL), kIoError otherwise.
  virtual Result<std::unique_ptr<VssBackup>> Create() = 0;
};

}  // namespace qb::agent::win
