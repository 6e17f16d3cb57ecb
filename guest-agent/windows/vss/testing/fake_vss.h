// FakeVss: a stand-in for the Volume Shadow Copy service, for tests (VSS cannot run under
// Wine). It is a fake, not a mock: it implements VssBackupFactory / VssBackup, keeps the
// writers' states, drives the REAL provider state machine (ProviderStateMachine) through its
// BeginPrepare / EndPrepare / PreCommit / Commit / PostCommit / Abort callbacks on its own
// thread during DoSnapshotSet, and enforces:
//   - VSS's call-order rules for a requester (each break is recorded in violations() and the
//     call fails with VSS_E_BAD_STATE), including "AbortBackup while DoSnapshotSet is pending
//     needs Cancel first" (VSS can hang otherwise);
//   - the hold-writes limit: if the provider's CommitSnapshots has not returned within
//     options.vss_hold_limit (default kVssHoldWritesLimit, 10 s), writes are released and the
//     set fails with VSS_E_HOLD_WRITES_TIMEOUT, as VSS does.
// Faults it injects: writer failure (at prepare-backup, freeze or thaw), hold-writes timeout,
// the provider never being asked to commit (never signalling), BackupComplete failing, VSS
// missing altogether (Create fails like Wine's E_NOTIMPL), client SKU context refusal.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "guest-agent/windows/vss/provider_state_machine.h"
#include "guest-agent/windows/vss/vss_backup.h"

namespace qb::agent::win {

enum class FakeFault : std::uint8_t {
  kNone,
  kWriterFailsAtPrepareBackup,  // failing_writer -> FAILED_AT_PREPARE_BACKUP after Prepare
  kWriterFailsAtFreeze,         // failing_writer fails OnFreeze: the set fails
  kWriterFailsAtThaw,           // failing_writer fails OnThaw: the set succeeds, status shows it
  kProviderNeverSignals,        // VSS stalls before CommitSnapshots until cancelled
  kBackupCompleteFails,         // BackupComplete returns an error
};

struct FakeVssOptions {
  std::vector<WriterMetadata> writers;
  bool vss_missing = false;                // Create() fails kUnsupported (Wine)
  bool transportable_unsupported = false;  // SetContext(transportable) -> VSS_E_UNSUPPORTED_CONTEXT
  FakeFault fault = FakeFault::kNone;
  std::string failing_writer;  // writer name for the writer faults
  std::chrono::milliseconds vss_hold_limit = limits::kVssHoldWritesLimit;
};

class FakeVss final : public VssBackupFactory {
 public:
  // `provider` (the real state machine, over an InProcessHold) must outlive the fake.
  FakeVss(FakeVssOptions options, ProviderStateMachine& provider);
  ~FakeVss() override;

  Result<std::unique_ptr<VssBackup>> Create() override;

  // Every requester call and provider callback, in order: "InitializeForBackup",
  // "SetBackupState(COPY)", "SetContext(transportable)", ..., "provider.CommitSnapshots", ...
  std::vector<std::string> calls() const;
  // Requester calls only (no provider callbacks, no Query/Wait polling).
  std::vector<std::string> requester_calls() const;
  // Order-rule breaks; empty when the requester behaved.
  std::vector<std::string> violations() const;
  // Components added by the last backup: "writer:logical\name".
  std::vector<std::string> added_components() const;
  // The longest time writes were held (CommitSnapshots entered -> writes released).
  std::chrono::milliseconds longest_hold() const;
  // True while writes are held (between the flush-and-hold and its release).
  bool writes_held() const;
  // Current state of writer `name` (kUnknown if there is none).
  WriterState writer_state(const std::string& name) const;
  int backups_created() const;

 private:
  friend class FakeBackup;
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace qb::agent::win
