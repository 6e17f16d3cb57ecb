// qb-vss-provider.dll: the quiesce-bridge VSS software provider, a COM+ server component.
// Every IVssSoftwareSnapshotProvider / IVssProviderCreateSnapshotSet call forwards to the
// COM-free ProviderStateMachine (tested in-process); the agent and this DLL talk through the
// named events of named_event_hold.h. The provider creates no snapshot itself: CommitSnapshots
// holds writes while the host cuts the array snapshot, then returns.
//
// NOT RUN HERE: VSS does not exist under Wine; the DLL is built and its exports checked in CI,
// its logic is the state machine the tests run. Loading it in VSS needs real Windows.
// clang-format off
#include <windows.h>
#include <objbase.h>
#include <vss.h>
#include <vsprov.h>
// clang-format on

#include <atomic>
#include <new>
#include <string>

#include "guest-agent/windows/vss/named_event_hold.h"
#include "guest-agent/windows/vss/provider_ids.h"
#include "guest-agent/windows/vss/provider_state_machine.h"

namespace qb::agent::win {
namespace {

std::atomic<long> g_objects{0};  // live COM objects (DllCanUnloadNow)
std::atomic<long> g_locks{0};    // IClassFactory::LockServer

std::string Narrow(const wchar_t* w) {
  if (!w) return {};
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
  std::string s(static_cast<std::size_t>(n > 0 ? n - 1 : 0), '\0');
  if (n > 1) WideCharToMultiByte(CP_UTF8, 0, w, -1, s.data(), n, nullptr, nullptr);
  return s;
}

std::string GuidText(const GUID& g) {
  wchar_t buf[64];
  StringFromGUID2(g, buf, 64);
  return Narrow(buf);
}

GUID GuidOf(const char* text) {
  GUID g{};
  std::wstring w(text, text + std::char_traits<char>::length(text));
  CLSIDFromString(w.c_str(), &g);
  return g;
}

HRESULT ToHresult(ProviderVerdict v) {
  switch (v) {
    case ProviderVerdict::kOk:
      return S_OK;
    case ProviderVerdict::kBadState:
      return VSS_E_BAD_STATE;
    case ProviderVerdict::kNotOurSet:
    case ProviderVerdict::kAborted:
    case ProviderVerdict::kHoldLimit:
      return VSS_E_PROVIDER_VETO;
  }
  return E_UNEXPECTED;
}

// An empty snapshot enumeration: this provider keeps no snapshots of its own.
class EmptyEnum final : public IVssEnumObject {
 public:
  EmptyEnum() { ++g_objects; }
  ~EmptyEnum() { --g_objects; }
  HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void** out) override {
    if (riid == IID_IUnknown || riid == IID_IVssEnumObject) {
      *out = static_cast<IVssEnumObject*>(this);
      AddRef();
      return S_OK;
    }
    *out = nullptr;
    return E_NOINTERFACE;
  }
  ULONG STDMETHODCALLTYPE AddRef() override { return ++refs_; }
  ULONG STDMETHODCALLTYPE Release() override {
    const ULONG r = --refs_;
    if (r == 0) delete this;
    return r;
  }
  HRESULT STDMETHODCALLTYPE Next(ULONG, VSS_OBJECT_PROP*, ULONG* fetched) override {
    if (fetched) *fetched = 0;
    return S_FALSE;
  }
  HRESULT STDMETHODCALLTYPE Skip(ULONG) override { return S_FALSE; }
  HRESULT STDMETHODCALLTYPE Reset() override { return S_OK; }
  HRESULT STDMETHODCALLTYPE Clone(IVssEnumObject** out) override {
    *out = new (std::nothrow) EmptyEnum();
    return *out ? S_OK : E_OUTOFMEMORY;
  }

 private:
  std::atomic<ULONG> refs_{1};
};

class Provider final : public IVssSoftwareSnapshotProvider,
                       public IVssProviderCreateSnapshotSet,
                       public IVssProviderNotifications {
 public:
  Provider() : machine_(channel_) { ++g_objects; }
  ~Provider() { --g_objects; }

  // IUnknown
  HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void** out) override {
    if (riid == IID_IUnknown || riid == IID_IVssSoftwareSnapshotProvider) {
      *out = static_cast<IVssSoftwareSnapshotProvider*>(this);
    } else if (riid == IID_IVssProviderCreateSnapshotSet) {
      *out = static_cast<IVssProviderCreateSnapshotSet*>(this);
    } else if (riid == IID_IVssProviderNotifications) {
      *out = static_cast<IVssProviderNotifications*>(this);
    } else {
      *out = nullptr;
      return E_NOINTERFACE;
    }
    AddRef();
    return S_OK;
  }
  ULONG STDMETHODCALLTYPE AddRef() override { return ++refs_; }
  ULONG STDMETHODCALLTYPE Release() override {
    const ULONG r = --refs_;
    if (r == 0) delete this;
    return r;
  }

  // IVssSoftwareSnapshotProvider
  HRESULT STDMETHODCALLTYPE SetContext(LONG) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE GetSnapshotProperties(VSS_ID, VSS_SNAPSHOT_PROP*) override {
    return VSS_E_OBJECT_NOT_FOUND;
  }
  HRESULT STDMETHODCALLTYPE Query(VSS_ID, VSS_OBJECT_TYPE, VSS_OBJECT_TYPE,
                                  IVssEnumObject** out) override {
    *out = new (std::nothrow) EmptyEnum();
    return *out ? S_OK : E_OUTOFMEMORY;
  }
  HRESULT STDMETHODCALLTYPE DeleteSnapshots(VSS_ID, VSS_OBJECT_TYPE, WINBOOL, LONG* deleted,
                                            VSS_ID* nondeleted) override {
    if (deleted) *deleted = 0;
    if (nondeleted) *nondeleted = GUID_NULL;
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE BeginPrepareSnapshot(VSS_ID set, VSS_ID, VSS_PWSZ volume,
                                                 LONG) override {
    return ToHresult(machine_.BeginPrepareSnapshot(GuidText(set), Narrow(volume)));
  }
  HRESULT STDMETHODCALLTYPE IsVolumeSupported(VSS_PWSZ volume, WINBOOL* supported) override {
    *supported = machine_.IsVolumeSupported(Narrow(volume)) ? TRUE : FALSE;
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE IsVolumeSnapshotted(VSS_PWSZ, WINBOOL* present,
                                                LONG* compatibility) override {
    *present = FALSE;
    *compatibility = 0;
    return S_OK;
  }
  HRESULT STDMETHODCALLTYPE SetSnapshotProperty(VSS_ID, VSS_SNAPSHOT_PROPERTY_ID,
                                                VARIANT) override {
    return E_NOTIMPL;
  }
  HRESULT STDMETHODCALLTYPE RevertToSnapshot(VSS_ID) override { return E_NOTIMPL; }
  HRESULT STDMETHODCALLTYPE QueryRevertStatus(VSS_PWSZ, IVssAsync**) override { return E_NOTIMPL; }

  // IVssProviderCreateSnapshotSet
  HRESULT STDMETHODCALLTYPE EndPrepareSnapshots(VSS_ID set) override {
    return ToHresult(machine_.EndPrepareSnapshots(GuidText(set)));
  }
  HRESULT STDMETHODCALLTYPE PreCommitSnapshots(VSS_ID set) override {
    return ToHresult(machine_.PreCommitSnapshots(GuidText(set)));
  }
  HRESULT STDMETHODCALLTYPE CommitSnapshots(VSS_ID set) override {
    return ToHresult(machine_.CommitSnapshots(GuidText(set)));
  }
  HRESULT STDMETHODCALLTYPE PostCommitSnapshots(VSS_ID set, LONG) override {
    return ToHresult(machine_.PostCommitSnapshots(GuidText(set)));
  }
  HRESULT STDMETHODCALLTYPE PreFinalCommitSnapshots(VSS_ID) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE PostFinalCommitSnapshots(VSS_ID) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE AbortSnapshots(VSS_ID set) override {
    return ToHresult(machine_.AbortSnapshots(GuidText(set)));
  }

  // IVssProviderNotifications
  HRESULT STDMETHODCALLTYPE OnLoad(IUnknown*) override { return S_OK; }
  HRESULT STDMETHODCALLTYPE OnUnload(WINBOOL) override { return S_OK; }

 private:
  std::atomic<ULONG> refs_{1};
  NamedEventHoldChannel channel_;
  ProviderStateMachine machine_;
};

class Factory final : public IClassFactory {
 public:
  HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void** out) override {
    if (riid == IID_IUnknown || riid == IID_IClassFactory) {
      *out = static_cast<IClassFactory*>(this);
      AddRef();
      return S_OK;
    }
    *out = nullptr;
    return E_NOINTERFACE;
  }
  ULONG STDMETHODCALLTYPE AddRef() override { return 2; }  // static lifetime
  ULONG STDMETHODCALLTYPE Release() override { return 1; }
  HRESULT STDMETHODCALLTYPE CreateInstance(IUnknown* outer, REFIID riid, void** out) override {
    *out = nullptr;
    if (outer) return CLASS_E_NOAGGREGATION;
    auto* provider = new (std::nothrow) Provider();
    if (!provider) return E_OUTOFMEMORY;
    HRESULT hr = provider->QueryInterface(riid, out);
    provider->Release();
    return hr;
  }
  HRESULT STDMETHODCALLTYPE LockServer(BOOL lock) override {
    lock ? ++g_locks : --g_locks;
    return S_OK;
  }
};

Factory g_factory;

}  // namespace
}  // namespace qb::agent::win

extern "C" {

__declspec(dllexport) HRESULT STDAPICALLTYPE
    DllGetClassObject(REFCLSID clsid, REFIID riid, void** out) {
  using namespace qb::agent::win;
  if (clsid != GuidOf(kProviderClsid)) {
    *out = nullptr;
    return CLASS_E_CLASSNOTAVAILABLE;
  }
  return g_factory.QueryInterface(riid, out);
}

__declspec(dllexport) HRESULT STDAPICALLTYPE DllCanUnloadNow() {
  using namespace qb::agent::win;
  return g_objects == 0 && g_locks == 0 ? S_OK : S_FALSE;
}

// Registration goes through the COM+ catalog (quiesce-agent --install), not self-registration.
__declspec(dllexport) HRESULT STDAPICALLTYPE DllRegisterServer() { return S_OK; }
__declspec(dllexport) HRESULT STDAPICALLTYPE DllUnregisterServer() { return S_OK; }

}  // extern "C"
