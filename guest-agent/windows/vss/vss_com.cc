// The real VssBackup: IVssBackupComponents through COM. The only requester-side COM code of the
// agent; nothing COM leaves this file (errors become Status values naming the VSS error).
//
// NOT RUN HERE: VSS does not exist under Wine (CreateVssBackupComponents returns E_NOTIMPL), so
// this file is compiled and linked in CI but only exercised on real Windows.
#include "guest-agent/windows/vss/vss_com.h"

// clang-format off
#include <windows.h>
#include <objbase.h>
#include <oleauto.h>
#include <vss.h>
#include <vswriter.h>
#include <vsbackup.h>
// clang-format on

#include <cstdio>

#include "guest-agent/windows/vss/com_ptr.h"
#include "guest-agent/windows/vss/provider_ids.h"

namespace qb::agent::win {

namespace {

// Owns a BSTR.
class Bstr {
 public:
  ~Bstr() { SysFreeString(b_); }
  BSTR* put() { return &b_; }
  BSTR get() const { return b_; }

 private:
  BSTR b_ = nullptr;
};

// COM for the calling thread (MTA); the worker and the lease watchdog both call VSS.
void EnsureComOnThisThread() {
  thread_local bool initialized = false;
  if (!initialized) {
    CoInitializeEx(nullptr, COINIT_MULTITHREADED);
    initialized = true;  // never uninitialized: the thread ends with the process
  }
}

std::string Narrow(const wchar_t* w) {
  if (!w || !*w) return {};
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
  std::string s(static_cast<std::size_t>(n > 0 ? n - 1 : 0), '\0');
  if (n > 1) WideCharToMultiByte(CP_UTF8, 0, w, -1, s.data(), n, nullptr, nullptr);
  return s;
}

std::wstring Widen(const std::string& s) {
  if (s.empty()) return {};
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

std::string GuidText(const GUID& g) {
  wchar_t buf[64];
  StringFromGUID2(g, buf, 64);
  return Narrow(buf);
}

bool GuidFrom(const std::string& text, GUID* out) {
  std::wstring w = Widen(text);
  return SUCCEEDED(CLSIDFromString(w.c_str(), out));
}

const char* HrName(HRESULT hr) {
  switch (static_cast<std::uint32_t>(hr)) {
    case 0x80042301u:
      return "VSS_E_BAD_STATE";
    case 0x80042302u:
      return "VSS_E_UNEXPECTED";
    case 0x80042303u:
      return "VSS_E_PROVIDER_ALREADY_REGISTERED";
    case 0x80042304u:
      return "VSS_E_PROVIDER_NOT_REGISTERED";
    case 0x80042306u:
      return "VSS_E_PROVIDER_VETO";
    case 0x80042308u:
      return "VSS_E_OBJECT_NOT_FOUND";
    case 0x8004230cu:
      return "VSS_E_VOLUME_NOT_SUPPORTED";
    case 0x8004230eu:
      return "VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER";
    case 0x8004230fu:
      return "VSS_E_UNEXPECTED_PROVIDER_ERROR";
    case 0x80042312u:
      return "VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED";
    case 0x80042313u:
      return "VSS_E_FLUSH_WRITES_TIMEOUT";
    case 0x80042314u:
      return "VSS_E_HOLD_WRITES_TIMEOUT";
    case 0x80042316u:
      return "VSS_E_SNAPSHOT_SET_IN_PROGRESS";
    case 0x80042318u:
      return "VSS_E_WRITER_INFRASTRUCTURE";
    case 0x8004231bu:
      return "VSS_E_UNSUPPORTED_CONTEXT";
    case 0x8004231fu:
      return "VSS_E_INSUFFICIENT_STORAGE";
    case 0x800423f2u:
      return "VSS_E_WRITER_NOT_RESPONDING";
    case 0x800423f3u:
      return "VSS_E_WRITERERROR_RETRYABLE";
    case 0x800423f4u:
      return "VSS_E_WRITERERROR_NONRETRYABLE";
    case 0x80004001u:
      return "E_NOTIMPL";
    case 0x80040154u:
      return "REGDB_E_CLASSNOTREG";
    case 0x80070005u:
      return "E_ACCESSDENIED";
    case 0x8000ffffu:
      return "E_UNEXPECTED";
    default:
      return "HRESULT";
  }
}

std::string HrText(HRESULT hr) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s 0x%08lx", HrName(hr),
                static_cast<unsigned long>(static_cast<std::uint32_t>(hr)));
  return buf;
}

Status HrStatus(const char* what, HRESULT hr) {
  if (SUCCEEDED(hr)) return Status::Ok();
  const auto u = static_cast<std::uint32_t>(hr);
  const bool unsupported = u == 0x8004231bu || u == 0x80004001u || u == 0x80040154u;
  return Error(unsupported ? Code::kUnsupported : Code::kIoError,
               std::string(what) + ": " + HrText(hr));
}

// Waits for a VSS async operation and turns its result into a Status.
Status WaitAsync(const char* what, IVssAsync* async, DWORD timeout_ms = INFINITE) {
  HRESULT hr = async->Wait(timeout_ms);
  if (FAILED(hr)) return HrStatus(what, hr);
  HRESULT result = S_OK;
  hr = async->QueryStatus(&result, nullptr);
  if (FAILED(hr)) return HrStatus(what, hr);
  if (result == VSS_S_ASYNC_PENDING) return Error(Code::kTimeout, std::string(what) + " pending");
  if (result == VSS_S_ASYNC_CANCELLED)
    return Error(Code::kCancelled, std::string(what) + " cancelled");
  if (result == VSS_S_ASYNC_FINISHED || result == S_OK) return Status::Ok();
  return HrStatus(what, result);
}

void AddFile(IVssWMFiledesc* file, std::vector<std::string>& out) {
  if (!file) return;
  Bstr path, spec;
  file->GetPath(path.put());
  file->GetFilespec(spec.put());
  std::string p = Narrow(path.get());
  // Writers may use environment variables (%SystemRoot%) in paths.
  wchar_t expanded[MAX_PATH * 2];
  if (path.get() && ExpandEnvironmentStringsW(path.get(), expanded, MAX_PATH * 2) > 0) {
    p = Narrow(expanded);
  }
  if (!p.empty() && p.back() != '\\') p.push_back('\\');
  out.push_back(p + Narrow(spec.get()));
  file->Release();
}

class ComVssBackup final : public VssBackup {
 public:
  explicit ComVssBackup(IVssBackupComponents* components) { *bc_.put() = components; }

  Status InitializeForBackup() override {
    EnsureComOnThisThread();
    return HrStatus("InitializeForBackup", bc_->InitializeForBackup(nullptr));
  }

  Status SetBackupState(BackupType type) override {
    EnsureComOnThisThread();
    const VSS_BACKUP_TYPE t = type == BackupType::kFull ? VSS_BT_FULL : VSS_BT_COPY;
    return HrStatus("SetBackupState", bc_->SetBackupState(true, false, t, false));
  }

  Status SetContext(bool transportable) override {
    EnsureComOnThisThread();
    LONG context = static_cast<LONG>(VSS_CTX_APP_ROLLBACK) |
                   static_cast<LONG>(VSS_VOLSNAP_ATTR_NO_AUTORECOVERY) |
                   static_cast<LONG>(VSS_VOLSNAP_ATTR_TXF_RECOVERY);
    if (transportable) context |= static_cast<LONG>(VSS_VOLSNAP_ATTR_TRANSPORTABLE);
    return HrStatus("SetContext", bc_->SetContext(context));
  }

  Result<std::vector<WriterMetadata>> GatherWriterMetadata() override {
    EnsureComOnThisThread();
    ComPtr<IVssAsync> async;
    QB_RETURN_IF_ERROR(HrStatus("GatherWriterMetadata", bc_->GatherWriterMetadata(async.put())));
    QB_RETURN_IF_ERROR(WaitAsync("GatherWriterMetadata", async.get()));
    UINT writers = 0;
    QB_RETURN_IF_ERROR(HrStatus("GetWriterMetadataCount", bc_->GetWriterMetadataCount(&writers)));
    std::vector<WriterMetadata> out;
    for (UINT i = 0; i < writers; ++i) {
      VSS_ID instance_key{};
      ComPtr<IVssExamineWriterMetadata> md;
      if (FAILED(bc_->GetWriterMetadata(i, &instance_key, md.put()))) continue;
      WriterMetadata w;
      VSS_ID instance{}, writer{};
      Bstr name;
      VSS_USAGE_TYPE usage{};
      VSS_SOURCE_TYPE source{};
      if (FAILED(md->GetIdentity(&instance, &writer, name.put(), &usage, &source))) continue;
      w.instance_id = GuidText(instance);
      w.writer_id = GuidText(writer);
      w.name = Narrow(name.get());
      UINT include = 0, exclude = 0, components = 0;
      md->GetFileCounts(&include, &exclude, &components);
      for (UINT j = 0; j < components; ++j) {
        ComPtr<IVssWMComponent> component;
        if (FAILED(md->GetComponent(j, component.put()))) continue;
        PVSSCOMPONENTINFO info = nullptr;
        if (FAILED(component->GetComponentInfo(&info)) || !info) continue;
        VssComponent c;
        c.logical_path = Narrow(info->bstrLogicalPath);
        c.name = Narrow(info->bstrComponentName);
        c.selectable = info->bSelectable;
        c.type =
            info->type == VSS_CT_FILEGROUP ? ComponentType::kFileGroup : ComponentType::kDatabase;
        for (UINT k = 0; k < info->cFileCount; ++k) {
          IVssWMFiledesc* f = nullptr;
          if (SUCCEEDED(component->GetFile(k, &f))) AddFile(f, c.file_paths);
        }
        for (UINT k = 0; k < info->cDatabases; ++k) {
          IVssWMFiledesc* f = nullptr;
          if (SUCCEEDED(component->GetDatabaseFile(k, &f))) AddFile(f, c.file_paths);
        }
        for (UINT k = 0; k < info->cLogFiles; ++k) {
          IVssWMFiledesc* f = nullptr;
          if (SUCCEEDED(component->GetDatabaseLogFile(k, &f))) AddFile(f, c.file_paths);
        }
        component->FreeComponentInfo(info);
        w.components.push_back(std::move(c));
      }
      out.push_back(std::move(w));
    }
    return out;
  }

  Status AddComponent(const WriterMetadata& writer, const VssComponent& component) override {
    EnsureComOnThisThread();
    GUID instance{}, writer_id{};
    if (!GuidFrom(writer.instance_id, &instance) || !GuidFrom(writer.writer_id, &writer_id)) {
      return Error(Code::kInvalidArgument, "bad writer id for " + writer.name);
    }
    const std::wstring logical = Widen(component.logical_path);
    const std::wstring name = Widen(component.name);
    return HrStatus("AddComponent",
                    bc_->AddComponent(instance, writer_id, ComponentTypeOf(component),
                                      logical.empty() ? nullptr : logical.c_str(), name.c_str()));
  }

  Result<std::string> StartSnapshotSet() override {
    EnsureComOnThisThread();
    QB_RETURN_IF_ERROR(HrStatus("StartSnapshotSet", bc_->StartSnapshotSet(&set_id_)));
    return GuidText(set_id_);
  }

  Status AddToSnapshotSet(const std::string& volume) override {
    EnsureComOnThisThread();
    GUID provider{};
    GuidFrom(kProviderId, &provider);
    std::wstring v = Widen(volume);
    VSS_ID snapshot{};
    return HrStatus("AddToSnapshotSet", bc_->AddToSnapshotSet(v.data(), provider, &snapshot));
  }

  Status PrepareForBackup() override {
    EnsureComOnThisThread();
    ComPtr<IVssAsync> async;
    QB_RETURN_IF_ERROR(HrStatus("PrepareForBackup", bc_->PrepareForBackup(async.put())));
    return WaitAsync("PrepareForBackup", async.get());
  }

  Result<std::vector<WriterStatus>> GatherWriterStatus() override {
    EnsureComOnThisThread();
    ComPtr<IVssAsync> async;
    QB_RETURN_IF_ERROR(HrStatus("GatherWriterStatus", bc_->GatherWriterStatus(async.put())));
    QB_RETURN_IF_ERROR(WaitAsync("GatherWriterStatus", async.get()));
    UINT count = 0;
    QB_RETURN_IF_ERROR(HrStatus("GetWriterStatusCount", bc_->GetWriterStatusCount(&count)));
    std::vector<WriterStatus> out;
    for (UINT i = 0; i < count; ++i) {
      VSS_ID instance{}, writer{};
      Bstr name;
      VSS_WRITER_STATE state{};
      HRESULT failure = S_OK;
      if (FAILED(bc_->GetWriterStatus(i, &instance, &writer, name.put(), &state, &failure))) {
        continue;
      }
      WriterStatus s;
      s.instance_id = GuidText(instance);
      s.writer_id = GuidText(writer);
      s.name = Narrow(name.get());
      s.state = static_cast<WriterState>(state);
      if (FAILED(failure)) s.failure = HrText(failure);
      out.push_back(std::move(s));
    }
    bc_->FreeWriterStatus();
    return out;
  }

  Status DoSnapshotSet() override {
    EnsureComOnThisThread();
    return HrStatus("DoSnapshotSet", bc_->DoSnapshotSet(do_async_.put()));
  }

  AsyncState QuerySnapshotSet(Status* failure) override {
    EnsureComOnThisThread();
    if (!do_async_) return AsyncState::kFailed;
    HRESULT result = S_OK;
    HRESULT hr = do_async_->QueryStatus(&result, nullptr);
    if (FAILED(hr)) result = hr;
    if (result == VSS_S_ASYNC_PENDING) return AsyncState::kPending;
    if (result == VSS_S_ASYNC_CANCELLED) return AsyncState::kCancelled;
    if (result == VSS_S_ASYNC_FINISHED || result == S_OK) return AsyncState::kSucceeded;
    if (failure) *failure = HrStatus("DoSnapshotSet", result);
    return AsyncState::kFailed;
  }

  Status WaitSnapshotSet(std::chrono::milliseconds timeout) override {
    EnsureComOnThisThread();
    if (!do_async_) return Error(Code::kInternal, "no DoSnapshotSet in progress");
    return WaitAsync("DoSnapshotSet", do_async_.get(), static_cast<DWORD>(timeout.count()));
  }

  Status CancelSnapshotSet() override {
    EnsureComOnThisThread();
    if (!do_async_) return Status::Ok();
    HRESULT hr = do_async_->Cancel();
    if (hr == VSS_S_ASYNC_FINISHED || hr == VSS_S_ASYNC_CANCELLED) return Status::Ok();
    return HrStatus("Cancel", hr);
  }

  Status SetBackupSucceeded(const WriterMetadata& writer, const VssComponent& component,
                            bool succeeded) override {
    EnsureComOnThisThread();
    GUID instance{}, writer_id{};
    if (!GuidFrom(writer.instance_id, &instance) || !GuidFrom(writer.writer_id, &writer_id)) {
      return Error(Code::kInvalidArgument, "bad writer id for " + writer.name);
    }
    const std::wstring logical = Widen(component.logical_path);
    const std::wstring name = Widen(component.name);
    return HrStatus("SetBackupSucceeded",
                    bc_->SetBackupSucceeded(instance, writer_id, ComponentTypeOf(component),
                                            logical.empty() ? nullptr : logical.c_str(),
                                            name.c_str(), succeeded));
  }

  Status BackupComplete() override {
    EnsureComOnThisThread();
    ComPtr<IVssAsync> async;
    QB_RETURN_IF_ERROR(HrStatus("BackupComplete", bc_->BackupComplete(async.put())));
    return WaitAsync("BackupComplete", async.get());
  }

  Status AbortBackup() override {
    EnsureComOnThisThread();
    return HrStatus("AbortBackup", bc_->AbortBackup());
  }

  Result<std::string> SaveAsXml() override {
    EnsureComOnThisThread();
    Bstr xml;
    QB_RETURN_IF_ERROR(HrStatus("SaveAsXML", bc_->SaveAsXML(xml.put())));
    return Narrow(xml.get());
  }

 private:
  static VSS_COMPONENT_TYPE ComponentTypeOf(const VssComponent& c) {
    return c.type == ComponentType::kFileGroup ? VSS_CT_FILEGROUP : VSS_CT_DATABASE;
  }

  ComPtr<IVssBackupComponents> bc_;
  ComPtr<IVssAsync> do_async_;
  VSS_ID set_id_{};
};

class ComVssBackupFactory final : public VssBackupFactory {
 public:
  Result<std::unique_ptr<VssBackup>> Create() override {
    EnsureComOnThisThread();
    IVssBackupComponents* components = nullptr;
    HRESULT hr = CreateVssBackupComponents(&components);
    if (FAILED(hr) || !components) return HrStatus("CreateVssBackupComponents", hr);
    return std::unique_ptr<VssBackup>(std::make_unique<ComVssBackup>(components));
  }
};

}  // namespace

std::unique_ptr<VssBackupFactory> MakeComVssBackupFactory() {
  return std::make_unique<ComVssBackupFactory>();
}

Status InitializeComForVss() {
  HRESULT hr = CoInitializeEx(nullptr, COINIT_MULTITHREADED);
  if (FAILED(hr) && hr != RPC_E_CHANGED_MODE) return HrStatus("CoInitializeEx", hr);
  // VSS calls back into the requester; it needs these process-wide security settings.
  hr = CoInitializeSecurity(nullptr, -1, nullptr, nullptr, RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                            RPC_C_IMP_LEVEL_IDENTIFY, nullptr, EOAC_NONE, nullptr);
  if (FAILED(hr) && hr != RPC_E_TOO_LATE) return HrStatus("CoInitializeSecurity", hr);
  return Status::Ok();
}

}  // namespace qb::agent::win
