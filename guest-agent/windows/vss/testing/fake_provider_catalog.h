// FakeProviderCatalog: an in-memory COM+ catalog and VSS provider list for registration tests
// (COM+ is not registered under Wine). Keeps the same rules the real catalog has: names are
// unique, a component needs its application, a provider is registered once. Injects a failure
// at a named step.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "guest-agent/windows/vss/provider_registration.h"

namespace qb::agent::win {

class FakeProviderCatalog final : public ProviderCatalog {
 public:
  // Step that fails once with kIoError: "CreateApplication", "InstallComponent",
  // "RegisterVssProvider", "DeleteApplication", "UnregisterVssProvider".
  std::string fail_at;
  std::map<std::string, std::vector<std::string>> applications;  // name -> DLL paths
  bool provider_registered = false;
  std::vector<std::string> calls;

  Result<bool> ApplicationExists(const std::string& name) override {
    calls.push_back("ApplicationExists");
    return applications.count(name) > 0;
  }
  Status CreateApplication(const std::string& name) override {
    QB_RETURN_IF_ERROR(Step("CreateApplication"));
    if (applications.count(name)) return Error(Code::kConflict, "application exists: " + name);
    applications[name];
    return Status::Ok();
  }
  Status InstallComponent(const std::string& name, const std::string& dll_path) override {
    QB_RETURN_IF_ERROR(Step("InstallComponent"));
    auto it = applications.find(name);
    if (it == applications.end()) return Error(Code::kNotFound, "no application " + name);
    it->second.push_back(dll_path);
    return Status::Ok();
  }
  Status DeleteApplication(const std::string& name) override {
    QB_RETURN_IF_ERROR(Step("DeleteApplication"));
    if (!applications.erase(name)) return Error(Code::kNotFound, "no application " + name);
    return Status::Ok();
  }
  Status RegisterVssProvider() override {
    QB_RETURN_IF_ERROR(Step("RegisterVssProvider"));
    if (provider_registered) return Error(Code::kConflict, "VSS_E_PROVIDER_ALREADY_REGISTERED");
    provider_registered = true;
    return Status::Ok();
  }
  Status UnregisterVssProvider() override {
    QB_RETURN_IF_ERROR(Step("UnregisterVssProvider"));
    if (!provider_registered) return Error(Code::kNotFound, "VSS_E_PROVIDER_NOT_REGISTERED");
    provider_registered = false;
    return Status::Ok();
  }

 private:
  Status Step(const std::string& name) {
    calls.push_back(name);
    if (fail_at == name) {
      fail_at.clear();
      return Error(Code::kIoError, name + " failed (injected)");
    }
    return Status::Ok();
  }
};

}  // namespace qb::agent::win
