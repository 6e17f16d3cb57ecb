#include "guest-agent/windows/vss/provider_registration.h"

#include "guest-agent/windows/vss/provider_ids.h"

namespace qb::agent::win {

namespace {

Status IgnoreNotFound(Status s) { return s.code() == Code::kNotFound ? Status::Ok() : s; }

}  // namespace

Status InstallProvider(ProviderCatalog& catalog, const std::string& dll_path) {
  if (dll_path.empty()) return Error(Code::kInvalidArgument, "no provider DLL path");
  QB_RETURN_IF_ERROR(UninstallProvider(catalog).WithContext("removing the old registration"));
  QB_RETURN_IF_ERROR(
      catalog.CreateApplication(kComPlusApplication).WithContext("COM+ application"));
  Status s = catalog.InstallComponent(kComPlusApplication, dll_path);
  if (s.ok())
    s = catalog.RegisterVssProvider().WithContext("VSS provider registration");
  else
    s = s.WithContext("COM+ component " + dll_path);
  if (!s.ok()) (void)catalog.DeleteApplication(kComPlusApplication);
  return s;
}

Status UninstallProvider(ProviderCatalog& catalog) {
  QB_RETURN_IF_ERROR(IgnoreNotFound(catalog.UnregisterVssProvider()));
  auto exists = catalog.ApplicationExists(kComPlusApplication);
  if (!exists.ok()) return exists.status();
  if (*exists) QB_RETURN_IF_ERROR(IgnoreNotFound(catalog.DeleteApplication(kComPlusApplication)));
  return Status::Ok();
}

}  // namespace qb::agent::win
