#include "guest-agent/windows/vss/provider_registration.h"

#include <gtest/gtest.h>

#include "guest-agent/windows/vss/provider_ids.h"
#include "guest-agent/windows/vss/testing/fake_provider_catalog.h"

namespace qb::agent::win {
namespace {

const std::string kDll = "C:\\Program Files\\quiesce-bridge\\qb-vss-provider.dll";

TEST(ProviderRegistration, InstallCreatesTheApplicationAndRegistersWithVss) {
  FakeProviderCatalog catalog;
  ASSERT_TRUE(InstallProvider(catalog, kDll).ok());
  ASSERT_EQ(catalog.applications.count(kComPlusApplication), 1u);
  EXPECT_EQ(catalog.applications[kComPlusApplication], std::vector<std::string>{kDll});
  EXPECT_TRUE(catalog.provider_registered);
}

TEST(ProviderRegistration, ReinstallReplacesAStaleRegistration) {
  FakeProviderCatalog catalog;
  ASSERT_TRUE(InstallProvider(catalog, "C:\\old\\qb-vss-provider.dll").ok());
  ASSERT_TRUE(InstallProvider(catalog, kDll).ok());
  EXPECT_EQ(catalog.applications[kComPlusApplication], std::vector<std::string>{kDll});
  EXPECT_TRUE(catalog.provider_registered);
}

TEST(ProviderRegistration, FailedVssRegistrationRollsBackTheApplication) {
  FakeProviderCatalog catalog;
  catalog.fail_at = "RegisterVssProvider";
  Status s = InstallProvider(catalog, kDll);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("VSS provider registration"), std::string::npos) << s.ToString();
  EXPECT_TRUE(catalog.applications.empty());
  EXPECT_FALSE(catalog.provider_registered);
}

TEST(ProviderRegistration, FailedComponentInstallRollsBack) {
  FakeProviderCatalog catalog;
  catalog.fail_at = "InstallComponent";
  ASSERT_FALSE(InstallProvider(catalog, kDll).ok());
  EXPECT_TRUE(catalog.applications.empty());
  EXPECT_FALSE(catalog.provider_registered);
}

TEST(ProviderRegistration, UninstallRemovesBothAndIsIdempotent) {
  FakeProviderCatalog catalog;
  ASSERT_TRUE(InstallProvider(catalog, kDll).ok());
  ASSERT_TRUE(UninstallProvider(catalog).ok());
  EXPECT_TRUE(catalog.applications.empty());
  EXPECT_FALSE(catalog.provider_registered);
  EXPECT_TRUE(UninstallProvider(catalog).ok()) << "nothing registered is fine";
}

TEST(ProviderRegistration, UninstallFailureIsReported) {
  FakeProviderCatalog catalog;
  ASSERT_TRUE(InstallProvider(catalog, kDll).ok());
  catalog.fail_at = "DeleteApplication";
  EXPECT_FALSE(UninstallProvider(catalog).ok());
}

TEST(ProviderRegistration, EmptyDllPathIsRefused) {
  FakeProviderCatalog catalog;
  EXPECT_EQ(InstallProvider(catalog, "").code(), Code::kInvalidArgument);
  EXPECT_TRUE(catalog.calls.empty());
}

}  // namespace
}  // namespace qb::agent::win
