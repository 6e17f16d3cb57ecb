// Registering our VSS provider: a COM+ server application holding qb-vss-provider.dll, and the
// provider's registration with VSS (IVssAdmin::RegisterProvider). quiesce-agent --install /
// --uninstall and the service's first start call these.
//
// The catalog seam keeps COM out of the logic: provider_registration_com.cc talks to
// ICOMAdminCatalog2 / IVssAdmin; tests use a fake catalog (COM+ is not registered under Wine).
#pragma once

#include <string>

#include "common/status.h"

namespace qb::agent::win {

class ProviderCatalog {
 public:
  virtual ~ProviderCatalog() = default;

  // Whether a COM+ application called `name` exists.
  virtual Result<bool> ApplicationExists(const std::string& name) = 0;
  // Creates COM+ server application `name` running as LocalSystem with packet-privacy
  // authentication and identify-level impersonation (what VSS needs to call a provider).
  virtual Status CreateApplication(const std::string& name) = 0;
  // Installs the COM classes of `dll_path` into application `name`.
  virtual Status InstallComponent(const std::string& name, const std::string& dll_path) = 0;
  // Deletes application `name` and its components; kNotFound when there is none.
  virtual Status DeleteApplication(const std::string& name) = 0;
  // IVssAdmin::RegisterProvider(kProviderId, kProviderClsid, name, SOFTWARE, version, ...).
  virtual Status RegisterVssProvider() = 0;
  // IVssAdmin::UnregisterProvider(kProviderId); kNotFound when it is not registered.
  virtual Status UnregisterVssProvider() = 0;
};

// Installs the provider: removes a stale registration first (an old DLL path), creates the COM+
// application, installs the DLL, registers with VSS. On failure it undoes what it did and
// returns the failing step's Status.
Status InstallProvider(ProviderCatalog& catalog, const std::string& dll_path);

// Removes the VSS registration and the COM+ application. Idempotent: nothing registered is OK.
Status UninstallProvider(ProviderCatalog& catalog);

}  // namespace qb::agent::win
