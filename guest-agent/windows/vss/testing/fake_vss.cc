#include "guest-agent/windows/vss/testing/fake_vss.h"

#include <algorithm>
#include <map>

namespace qb::agent::win {

namespace {

using Clock = std::chrono::steady_clock;

Status VssError(const char* name, std::uint32_t code, const std::string& detail = "") {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08x", code);
  return Error(Code::kIoError,
               std::string(name) + " " + hex + (detail.empty() ? "" : ": " + detail));
}

std::string ComponentKey(const WriterMetadata& w, const VssComponent& c) {
  return w.name + ":" + (c.logical_path.empty() ? "" : c.logical_path + "\\") + c.name;
}

}  // namespace

struct FakeVss::Shared {
  Shared(FakeVssOptions o, ProviderStateMachine& p) : options(std::move(o)), provider(p) {}
  FakeVssOptions options;
  ProviderStateMachine& provider;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> calls;
  std::vector<bool> is_requester_call;
  std::vector<std::string> violations;
  std::vector<std::string> added;
  std::map<std::string, WriterState> writer_states;
  std::chrono::milliseconds longest_hold{0};
  bool writes_held = false;
  int created = 0;

  void RecordLocked(std::string call, bool requester) {
    // Polling shows once per run of identical calls.
    if (!calls.empty() && calls.back() == call && call == "QueryStatus") return;
    calls.push_back(std::move(call));
    is_requester_call.push_back(requester);
  }
  void Record(std::string call, bool requester) {
    std::lock_guard lock(mu);
    RecordLocked(std::move(call), requester);
  }
  Status ViolationLocked(const std::string& what) {
    violations.push_back(what);
    return VssError("VSS_E_BAD_STATE", 0x80042301, what);
  }
  void SetWritersLocked(WriterState state) {
    for (auto& [name, s] : writer_states) {
      if (!IsFailedState(s)) s = state;
    }
  }
};

class FakeBackup final : public VssBackup {
 public:
  explicit FakeBackup(std::shared_ptr<FakeVss::Shared> s) : s_(std::move(s)) {}

  ~FakeBackup() override {
    {
      std::lock_guard lock(s_->mu);
      if (PendingLocked() && !cancel_requested_) {
        s_->violations.push_back("backup released while DoSnapshotSet was pending, not cancelled");
      }
      cancel_requested_ = true;
      s_->cv.notify_all();
    }
    if (sim_.joinable()) sim_.join();
  }

  Status InitializeForBackup() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("InitializeForBackup", true);
    if (initialized_) return s_->ViolationLocked("InitializeForBackup called twice");
    initialized_ = true;
    return Status::Ok();
  }

  Status SetBackupState(BackupType type) override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked(type == BackupType::kFull ? "SetBackupState(FULL)" : "SetBackupState(COPY)",
                     true);
    if (!initialized_) return s_->ViolationLocked("SetBackupState before InitializeForBackup");
    if (metadata_) return s_->ViolationLocked("SetBackupState after GatherWriterMetadata");
    state_set_ = true;
    type_ = type;
    return Status::Ok();
  }

  Status SetContext(bool transportable) override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked(transportable ? "SetContext(transportable)" : "SetContext(plain)", true);
    if (!initialized_) return s_->ViolationLocked("SetContext before InitializeForBackup");
    if (set_started_) return s_->ViolationLocked("SetContext after StartSnapshotSet");
    if (transportable && s_->options.transportable_unsupported) {
      return Error(Code::kUnsupported, "VSS_E_UNSUPPORTED_CONTEXT 0x8004231b");
    }
    context_set_ = true;
    return Status::Ok();
  }

  Result<std::vector<WriterMetadata>> GatherWriterMetadata() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("GatherWriterMetadata", true);
    if (!state_set_) return s_->ViolationLocked("GatherWriterMetadata before SetBackupState");
    if (!context_set_) return s_->ViolationLocked("GatherWriterMetadata before SetContext");
    if (metadata_) return s_->ViolationLocked("GatherWriterMetadata called twice");
    metadata_ = true;
    for (const auto& w : s_->options.writers) s_->writer_states[w.name] = WriterState::kStable;
    return s_->options.writers;
  }

  Status AddComponent(const WriterMetadata& writer, const VssComponent& component) override {
    std::lock_guard lock(s_->mu);
    const std::string key = ComponentKey(writer, component);
    s_->RecordLocked("AddComponent(" + key + ")", true);
    if (!metadata_) return s_->ViolationLocked("AddComponent before GatherWriterMetadata");
    if (prepared_) return s_->ViolationLocked("AddComponent after PrepareForBackup");
    bool known = false;
    for (const auto& w : s_->options.writers) {
      for (const auto& c : w.components) {
        known = known || (w.name == writer.name && ComponentKey(w, c) == key);
      }
    }
    if (!known) return s_->ViolationLocked("AddComponent of an unknown component " + key);
    components_.push_back(key);
    s_->added.push_back(key);
    return Status::Ok();
  }

  Result<std::string> StartSnapshotSet() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("StartSnapshotSet", true);
    if (!metadata_) return s_->ViolationLocked("StartSnapshotSet before GatherWriterMetadata");
    if (set_started_) return s_->ViolationLocked("StartSnapshotSet called twice");
    set_started_ = true;
    set_id_ = "{fake-set-" + std::to_string(s_->created) + "}";
    return set_id_;
  }

  Status AddToSnapshotSet(const std::string& volume) override {
    {
      std::lock_guard lock(s_->mu);
      s_->RecordLocked("AddToSnapshotSet(" + volume + ")", true);
      if (!set_started_) return s_->ViolationLocked("AddToSnapshotSet before StartSnapshotSet");
      if (prepared_) return s_->ViolationLocked("AddToSnapshotSet after PrepareForBackup");
      s_->RecordLocked("provider.IsVolumeSupported", false);
    }
    if (!s_->provider.IsVolumeSupported(volume)) {
      return VssError("VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER", 0x8004230e, volume);
    }
    std::lock_guard lock(s_->mu);
    volumes_.push_back(volume);
    return Status::Ok();
  }

  Status PrepareForBackup() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("PrepareForBackup", true);
    if (volumes_.empty()) return s_->ViolationLocked("PrepareForBackup with an empty set");
    if (prepared_) return s_->ViolationLocked("PrepareForBackup called twice");
    prepared_ = true;
    if (s_->options.fault == FakeFault::kWriterFailsAtPrepareBackup) {
      s_->writer_states[s_->options.failing_writer] = WriterState::kFailedAtPrepareBackup;
    }
    return Status::Ok();
  }

  Result<std::vector<WriterStatus>> GatherWriterStatus() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("GatherWriterStatus", true);
    if (!metadata_) return s_->ViolationLocked("GatherWriterStatus before GatherWriterMetadata");
    if (PendingLocked()) {
      return s_->ViolationLocked("GatherWriterStatus while DoSnapshotSet is pending");
    }
    if (prepared_ && !async_started_) status_checked_ = true;
    std::vector<WriterStatus> out;
    for (const auto& w : s_->options.writers) {
      WriterStatus st;
      st.writer_id = w.writer_id;
      st.instance_id = w.instance_id;
      st.name = w.name;
      st.state = s_->writer_states[w.name];
      if (IsFailedState(st.state)) st.failure = "VSS_E_WRITERERROR_NONRETRYABLE 0x800423f4";
      out.push_back(st);
    }
    return out;
  }

  Status DoSnapshotSet() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("DoSnapshotSet", true);
    if (!prepared_) return s_->ViolationLocked("DoSnapshotSet before PrepareForBackup");
    if (!status_checked_) {
      return s_->ViolationLocked("DoSnapshotSet without GatherWriterStatus after Prepare");
    }
    if (async_started_) return s_->ViolationLocked("DoSnapshotSet called twice");
    async_started_ = true;
    async_ = AsyncState::kPending;
    sim_ = std::thread([this] { Simulate(); });
    return Status::Ok();
  }

  AsyncState QuerySnapshotSet(Status* failure) override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("QueryStatus", true);
    if (!async_started_) {
      if (failure) *failure = s_->ViolationLocked("QueryStatus before DoSnapshotSet");
      return AsyncState::kFailed;
    }
    if (failure) *failure = async_failure_;
    return async_;
  }

  Status WaitSnapshotSet(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(s_->mu);
    s_->RecordLocked("Wait", true);
    if (!async_started_) return s_->ViolationLocked("Wait before DoSnapshotSet");
    if (!s_->cv.wait_for(lock, timeout, [&] { return async_ != AsyncState::kPending; })) {
      return Error(Code::kTimeout, "DoSnapshotSet still pending");
    }
    if (async_ == AsyncState::kCancelled) return Error(Code::kCancelled, "VSS_S_ASYNC_CANCELLED");
    return async_failure_;
  }

  Status CancelSnapshotSet() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("Cancel", true);
    if (!async_started_) return s_->ViolationLocked("Cancel before DoSnapshotSet");
    cancel_requested_ = true;
    s_->cv.notify_all();
    return Status::Ok();
  }

  Status SetBackupSucceeded(const WriterMetadata& writer, const VssComponent& component,
                            bool succeeded) override {
    std::lock_guard lock(s_->mu);
    const std::string key = ComponentKey(writer, component);
    s_->RecordLocked(std::string("SetBackupSucceeded(") + key + (succeeded ? ",true)" : ",false)"),
                     true);
    if (async_ != AsyncState::kSucceeded) {
      return s_->ViolationLocked("SetBackupSucceeded before the snapshot set succeeded");
    }
    if (std::find(components_.begin(), components_.end(), key) == components_.end()) {
      return s_->ViolationLocked("SetBackupSucceeded for a component not added: " + key);
    }
    if (completed_ || aborted_) return s_->ViolationLocked("SetBackupSucceeded after the end");
    return Status::Ok();
  }

  Status BackupComplete() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("BackupComplete", true);
    if (async_ != AsyncState::kSucceeded) {
      return s_->ViolationLocked("BackupComplete before the snapshot set succeeded");
    }
    if (completed_ || aborted_) return s_->ViolationLocked("BackupComplete after the end");
    completed_ = true;
    if (s_->options.fault == FakeFault::kBackupCompleteFails) {
      s_->writer_states[s_->options.failing_writer] = WriterState::kFailedAtBackupComplete;
      return VssError("VSS_E_WRITERERROR_RETRYABLE", 0x800423f3, "BackupComplete");
    }
    s_->SetWritersLocked(WriterState::kStable);
    return Status::Ok();
  }

  Status AbortBackup() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("AbortBackup", true);
    if (!initialized_) return s_->ViolationLocked("AbortBackup before InitializeForBackup");
    if (PendingLocked() && !cancel_requested_) {
      return s_->ViolationLocked("AbortBackup while DoSnapshotSet is pending without Cancel");
    }
    if (completed_) return s_->ViolationLocked("AbortBackup after BackupComplete");
    aborted_ = true;
    s_->SetWritersLocked(WriterState::kStable);
    return Status::Ok();
  }

  Result<std::string> SaveAsXml() override {
    std::lock_guard lock(s_->mu);
    s_->RecordLocked("SaveAsXML", true);
    if (!prepared_) return s_->ViolationLocked("SaveAsXML before PrepareForBackup");
    std::string xml = "<BACKUP_COMPONENTS xmlns=\"x-schema:#VssComponentMetadata\" backupType=\"";
    xml += type_ == BackupType::kFull ? "FULL" : "COPY";
    xml += "\" snapshotSetId=\"" + set_id_ + "\">";
    for (const auto& c : components_) xml += "<COMPONENT name=\"" + c + "\"/>";
    xml += "</BACKUP_COMPONENTS>";
    return xml;
  }

 private:
  bool PendingLocked() const { return async_started_ && async_ == AsyncState::kPending; }

  void Finish(AsyncState state, Status failure) {
    std::lock_guard lock(s_->mu);
    if (async_ != AsyncState::kPending) return;
    async_ = state;
    async_failure_ = std::move(failure);
    s_->cv.notify_all();
  }

  void FailWritersLocked(WriterState failed) {
    s_->writer_states[s_->options.failing_writer] = failed;
  }

  void Simulate() {
    auto& provider = s_->provider;
    const FakeVssOptions& o = s_->options;
    for (const auto& v : volumes_) {
      s_->Record("provider.BeginPrepareSnapshot(" + v + ")", false);
      if (provider.BeginPrepareSnapshot(set_id_, v) != ProviderVerdict::kOk) {
        Finish(AsyncState::kFailed, VssError("VSS_E_PROVIDER_VETO", 0x80042306, "prepare"));
        return;
      }
    }
    s_->Record("provider.EndPrepareSnapshots", false);
    provider.EndPrepareSnapshots(set_id_);
    {
      std::lock_guard lock(s_->mu);
      s_->RecordLocked("writers.OnFreeze", false);
      s_->SetWritersLocked(WriterState::kWaitingForThaw);
      if (o.fault == FakeFault::kWriterFailsAtFreeze)
        FailWritersLocked(WriterState::kFailedAtFreeze);
    }
    if (o.fault == FakeFault::kWriterFailsAtFreeze) {
      AbortSet("writer " + o.failing_writer + " failed at freeze");
      return;
    }
    s_->Record("provider.PreCommitSnapshots", false);
    provider.PreCommitSnapshots(set_id_);
    if (o.fault == FakeFault::kProviderNeverSignals) {
      std::unique_lock lock(s_->mu);
      s_->cv.wait(lock, [&] { return cancel_requested_; });
      lock.unlock();
      s_->Record("provider.AbortSnapshots", false);
      provider.AbortSnapshots(set_id_);
      std::lock_guard relock(s_->mu);
      s_->SetWritersLocked(WriterState::kStable);
      async_ = AsyncState::kCancelled;
      async_failure_ = Error(Code::kCancelled, "VSS_S_ASYNC_CANCELLED");
      s_->cv.notify_all();
      return;
    }

    // Flush and hold: writes to the set's volumes stop until CommitSnapshots returns or VSS's
    // own hold limit passes.
    const auto hold_start = Clock::now();
    bool commit_done = false;
    ProviderVerdict verdict = ProviderVerdict::kBadState;
    {
      std::lock_guard lock(s_->mu);
      s_->writes_held = true;
      s_->RecordLocked("provider.CommitSnapshots", false);
    }
    std::thread commit([&] {
      ProviderVerdict v = provider.CommitSnapshots(set_id_);
      std::lock_guard lock(s_->mu);
      verdict = v;
      commit_done = true;
      s_->cv.notify_all();
    });
    bool timed_out = false;
    {
      std::unique_lock lock(s_->mu);
      timed_out = !s_->cv.wait_for(lock, o.vss_hold_limit, [&] { return commit_done; });
      ReleaseWritesLocked(hold_start);
      if (timed_out) {
        s_->RecordLocked("vss.HoldWritesTimeout", false);
        s_->SetWritersLocked(WriterState::kStable);
        async_ = AsyncState::kFailed;
        async_failure_ = VssError("VSS_E_HOLD_WRITES_TIMEOUT", 0x80042314);
        s_->cv.notify_all();
      }
    }
    commit.join();
    if (timed_out) {
      s_->Record("provider.AbortSnapshots", false);
      provider.AbortSnapshots(set_id_);
      return;
    }
    if (verdict != ProviderVerdict::kOk) {
      AbortSet(std::string("provider ") + ProviderVerdictName(verdict));
      return;
    }
    {
      std::lock_guard lock(s_->mu);
      s_->RecordLocked("writers.OnThaw", false);
      s_->SetWritersLocked(WriterState::kWaitingForBackupComplete);
      if (o.fault == FakeFault::kWriterFailsAtThaw) FailWritersLocked(WriterState::kFailedAtThaw);
    }
    s_->Record("provider.PostCommitSnapshots", false);
    provider.PostCommitSnapshots(set_id_);
    Finish(AsyncState::kSucceeded, Status::Ok());
  }

  void ReleaseWritesLocked(Clock::time_point hold_start) {
    auto held = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - hold_start);
    s_->writes_held = false;
    s_->longest_hold = std::max(s_->longest_hold, held);
    if (held > limits::kVssHoldWritesLimit + limits::kVssHoldMargin) {
      s_->violations.push_back("writes held " + std::to_string(held.count()) +
                               " ms, beyond VSS's hold limit");
    }
  }

  void AbortSet(const std::string& why) {
    s_->Record("provider.AbortSnapshots", false);
    s_->provider.AbortSnapshots(set_id_);
    {
      std::lock_guard lock(s_->mu);
      s_->RecordLocked("writers.OnAbort", false);
      s_->SetWritersLocked(WriterState::kStable);
    }
    const bool veto = why.rfind("provider", 0) == 0;
    Finish(AsyncState::kFailed, veto ? VssError("VSS_E_PROVIDER_VETO", 0x80042306, why)
                                     : VssError("VSS_E_WRITERERROR_NONRETRYABLE", 0x800423f4, why));
  }

  std::shared_ptr<FakeVss::Shared> s_;
  bool initialized_ = false, state_set_ = false, context_set_ = false, metadata_ = false;
  bool set_started_ = false, prepared_ = false, status_checked_ = false, async_started_ = false;
  bool cancel_requested_ = false, completed_ = false, aborted_ = false;
  BackupType type_ = BackupType::kCopy;
  std::string set_id_;
  std::vector<std::string> volumes_;
  std::vector<std::string> components_;
  AsyncState async_ = AsyncState::kPending;
  Status async_failure_;
  std::thread sim_;
};

FakeVss::FakeVss(FakeVssOptions options, ProviderStateMachine& provider)
    : shared_(std::make_shared<Shared>(std::move(options), provider)) {}

FakeVss::~FakeVss() = default;

Result<std::unique_ptr<VssBackup>> FakeVss::Create() {
  std::lock_guard lock(shared_->mu);
  shared_->RecordLocked("CreateVssBackupComponents", true);
  if (shared_->options.vss_missing) {
    return Error(Code::kUnsupported, "E_NOTIMPL 0x80004001: no VSS on this system");
  }
  ++shared_->created;
  shared_->added.clear();
  return std::unique_ptr<VssBackup>(std::make_unique<FakeBackup>(shared_));
}

std::vector<std::string> FakeVss::calls() const {
  std::lock_guard lock(shared_->mu);
  return shared_->calls;
}

std::vector<std::string> FakeVss::requester_calls() const {
  std::lock_guard lock(shared_->mu);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < shared_->calls.size(); ++i) {
    if (shared_->is_requester_call[i] && shared_->calls[i] != "QueryStatus") {
      out.push_back(shared_->calls[i]);
    }
  }
  return out;
}

std::vector<std::string> FakeVss::violations() const {
  std::lock_guard lock(shared_->mu);
  return shared_->violations;
}

std::vector<std::string> FakeVss::added_components() const {
  std::lock_guard lock(shared_->mu);
  return shared_->added;
}

std::chrono::milliseconds FakeVss::longest_hold() const {
  std::lock_guard lock(shared_->mu);
  return shared_->longest_hold;
}

bool FakeVss::writes_held() const {
  std::lock_guard lock(shared_->mu);
  return shared_->writes_held;
}

WriterState FakeVss::writer_state(const std::string& name) const {
  std::lock_guard lock(shared_->mu);
  auto it = shared_->writer_states.find(name);
  return it == shared_->writer_states.end() ? WriterState::kUnknown : it->second;
}

int FakeVss::backups_created() const {
  std::lock_guard lock(shared_->mu);
  return shared_->created;
}

}  // namespace qb::agent::win
