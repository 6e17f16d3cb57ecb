// The real ProviderCatalog: the COM+ catalog (ICOMAdminCatalog2) and IVssAdmin.
// The only file that includes <initguid.h> before <comadmin.h> / <vsadmin.h> (their GUIDs are
// defined here once).
//
// NOT RUN HERE: the COM+ catalog is not registered under Wine and VSS is absent; tested through
// FakeProviderCatalog, run on real Windows only.
// clang-format off
#include <windows.h>
#include <initguid.h>
#include <objbase.h>
#include <oleauto.h>
#include <comadmin.h>
#include <vss.h>
#include <vsadmin.h>
// clang-format on

#include "guest-agent/windows/vss/provider_registration_com.h"

#include <cstdio>
#include <string>

#include "guest-agent/windows/vss/com_ptr.h"
#include "guest-agent/windows/vss/provider_ids.h"

namespace qb::agent::win {

namespace {

class Bstr {
 public:
  explicit Bstr(const std::wstring& s) : b_(SysAllocString(s.c_str())) {}
  ~Bstr() { SysFreeString(b_); }
  Bstr(const Bstr&) = delete;
  Bstr& operator=(const Bstr&) = delete;
  BSTR get() const { return b_; }

 private:
  BSTR b_;
};

class Variant {
 public:
  Variant() { VariantInit(&v_); }
  ~Variant() { VariantClear(&v_); }
  Variant(const Variant&) = delete;
  Variant& operator=(const Variant&) = delete;
  VARIANT* put() {
    VariantClear(&v_);
    return &v_;
  }
  const VARIANT& get() const { return v_; }
  static void Set(VARIANT* v, const std::wstring& s) {
    VariantInit(v);
    v->vt = VT_BSTR;
    v->bstrVal = SysAllocString(s.c_str());
  }
  static void Set(VARIANT* v, long n) {
    VariantInit(v);
    v->vt = VT_I4;
    v->lVal = n;
  }
  static void Set(VARIANT* v, bool b) {
    VariantInit(v);
    v->vt = VT_BOOL;
    v->boolVal = b ? VARIANT_TRUE : VARIANT_FALSE;
  }

 private:
  VARIANT v_;
};

std::wstring Widen(const std::string& s) {
  if (s.empty()) return {};
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

GUID GuidOf(const char* text) {
  GUID g{};
  CLSIDFromString(Widen(text).c_str(), &g);
  return g;
}

Status Hr(const char* what, HRESULT hr) {
  if (SUCCEEDED(hr)) return Status::Ok();
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s: HRESULT 0x%08lx", what,
                static_cast<unsigned long>(static_cast<std::uint32_t>(hr)));
  return Error(Code::kIoError, buf);
}

Status PutValue(ICatalogObject* obj, const wchar_t* name, VARIANT value) {
  Bstr key(name);
  HRESULT hr = obj->put_Value(key.get(), value);
  VariantClear(&value);
  return Hr("ICatalogObject::put_Value", hr);
}

class ComPlusProviderCatalog final : public ProviderCatalog {
 public:
  Result<bool> ApplicationExists(const std::string& name) override {
    long index = -1;
    QB_RETURN_IF_ERROR(FindApplication(name, &index));
    return index >= 0;
  }

  Status CreateApplication(const std::string& name) override {
    ComPtr<ICatalogCollection> apps;
    QB_RETURN_IF_ERROR(Applications(apps));
    ComPtr<IDispatch> added;
    QB_RETURN_IF_ERROR(Hr("Applications.Add", apps->Add(added.put())));
    ComPtr<ICatalogObject> app;
    QB_RETURN_IF_ERROR(
        Hr("QueryInterface(ICatalogObject)",
           added->QueryInterface(IID_ICatalogObject, reinterpret_cast<void**>(app.put()))));
    VARIANT v;
    Variant::Set(&v, Widen(name));
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"Name", v));
    Variant::Set(&v, std::wstring(L"quiesce-bridge: holds writes while the host snapshots LUNs"));
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"Description", v));
    Variant::Set(&v, std::wstring(L"NT Authority\\LocalSystem"));
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"Identity", v));
    Variant::Set(&v, 1L);  // COMAdminActivationLocal: a server application (own process)
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"Activation", v));
    Variant::Set(&v, false);
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"ApplicationAccessChecksEnabled", v));
    Variant::Set(&v, 6L);  // RPC_C_AUTHN_LEVEL_PKT_PRIVACY
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"Authentication", v));
    Variant::Set(&v, 2L);  // static cloaking
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"AuthenticationCapability", v));
    Variant::Set(&v, 2L);  // RPC_C_IMP_LEVEL_IDENTIFY
    QB_RETURN_IF_ERROR(PutValue(app.get(), L"ImpersonationLevel", v));
    long changes = 0;
    return Hr("Applications.SaveChanges", apps->SaveChanges(&changes));
  }

  Status InstallComponent(const std::string& name, const std::string& dll_path) override {
    QB_RETURN_IF_ERROR(Open());
    Bstr app(Widen(name)), dll(Widen(dll_path)), none(L"");
    return Hr("InstallComponent",
              catalog_->InstallComponent(app.get(), dll.get(), none.get(), none.get()));
  }

  Status DeleteApplication(const std::string& name) override {
    ComPtr<ICatalogCollection> apps;
    QB_RETURN_IF_ERROR(Applications(apps));
    long count = 0;
    QB_RETURN_IF_ERROR(Hr("Applications.Count", apps->get_Count(&count)));
    for (long i = 0; i < count; ++i) {
      if (NameAt(apps.get(), i) == Widen(name)) {
        QB_RETURN_IF_ERROR(Hr("Applications.Remove", apps->Remove(i)));
        long changes = 0;
        return Hr("Applications.SaveChanges", apps->SaveChanges(&changes));
      }
    }
    return Error(Code::kNotFound, "no COM+ application " + name);
  }

  Status RegisterVssProvider() override {
    ComPtr<IVssAdmin> admin;
    QB_RETURN_IF_ERROR(VssAdmin(admin));
    std::wstring name = Widen(kProviderName), version = Widen(kProviderVersion);
    return Hr(
        "IVssAdmin::RegisterProvider",
        admin->RegisterProvider(GuidOf(kProviderId), GuidOf(kProviderClsid), name.data(),
                                VSS_PROV_SOFTWARE, version.data(), GuidOf(kProviderVersionId)));
  }

  Status UnregisterVssProvider() override {
    ComPtr<IVssAdmin> admin;
    QB_RETURN_IF_ERROR(VssAdmin(admin));
    HRESULT hr = admin->UnregisterProvider(GuidOf(kProviderId));
    if (static_cast<std::uint32_t>(hr) == 0x80042304u) {  // VSS_E_PROVIDER_NOT_REGISTERED
      return Error(Code::kNotFound, "provider not registered");
    }
    return Hr("IVssAdmin::UnregisterProvider", hr);
  }

 private:
  Status Open() {
    if (catalog_.get()) return Status::Ok();
    CoInitializeEx(nullptr, COINIT_MULTITHREADED);
    return Hr("CoCreateInstance(COMAdminCatalog)",
              CoCreateInstance(CLSID_COMAdminCatalog, nullptr, CLSCTX_INPROC_SERVER,
                               IID_ICOMAdminCatalog2, reinterpret_cast<void**>(catalog_.put())));
  }

  Status Applications(ComPtr<ICatalogCollection>& out) {
    QB_RETURN_IF_ERROR(Open());
    ComPtr<IDispatch> dispatch;
    Bstr name(L"Applications");
    QB_RETURN_IF_ERROR(Hr("GetCollection", catalog_->GetCollection(name.get(), dispatch.put())));
    QB_RETURN_IF_ERROR(
        Hr("QueryInterface(ICatalogCollection)",
           dispatch->QueryInterface(IID_ICatalogCollection, reinterpret_cast<void**>(out.put()))));
    return Hr("Applications.Populate", out->Populate());
  }

  static std::wstring NameAt(ICatalogCollection* apps, long i) {
    ComPtr<IDispatch> item;
    if (FAILED(apps->get_Item(i, item.put()))) return {};
    ComPtr<ICatalogObject> obj;
    if (FAILED(item->QueryInterface(IID_ICatalogObject, reinterpret_cast<void**>(obj.put())))) {
      return {};
    }
    Variant name;
    if (FAILED(obj->get_Name(name.put())) || name.get().vt != VT_BSTR) return {};
    return name.get().bstrVal ? std::wstring(name.get().bstrVal) : std::wstring();
  }

  Status FindApplication(const std::string& name, long* index) {
    ComPtr<ICatalogCollection> apps;
    QB_RETURN_IF_ERROR(Applications(apps));
    long count = 0;
    QB_RETURN_IF_ERROR(Hr("Applications.Count", apps->get_Count(&count)));
    *index = -1;
    for (long i = 0; i < count; ++i) {
      if (NameAt(apps.get(), i) == Widen(name)) *index = i;
    }
    return Status::Ok();
  }

  Status VssAdmin(ComPtr<IVssAdmin>& out) {
    CoInitializeEx(nullptr, COINIT_MULTITHREADED);
    return Hr("CoCreateInstance(VSSCoordinator)",
              CoCreateInstance(CLSID_VSSCoordinator, nullptr, CLSCTX_ALL, IID_IVssAdmin,
                               reinterpret_cast<void**>(out.put())));
  }

  ComPtr<ICOMAdminCatalog2> catalog_;
};

}  // namespace

std::unique_ptr<ProviderCatalog> MakeComPlusProviderCatalog() {
  return std::make_unique<ComPlusProviderCatalog>();
}

}  // namespace qb::agent::win
