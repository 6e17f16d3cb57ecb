// The provider DLL itself, loaded under Wine like VSS would load it (LoadLibrary,
// DllGetClassObject, IClassFactory::CreateInstance), driven through its COM interfaces while
// the agent's side of the named-event channel arms, waits and releases. VSS itself is absent
// here: the test plays VSS's part and calls the provider in VSS's order.
// clang-format off
#include <windows.h>
#include <objbase.h>
#include <vss.h>
#include <vsprov.h>
// clang-format on

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "common/time_limits.h"
#include "guest-agent/windows/vss/named_event_hold.h"
#include "guest-agent/windows/vss/provider_ids.h"

namespace qb::agent::win {
namespace {

using namespace std::chrono_literals;
constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

GUID GuidOf(const std::string& text) {
  GUID g{};
  std::wstring w(text.begin(), text.end());
  CLSIDFromString(w.c_str(), &g);
  return g;
}

std::string GuidText(const GUID& g) {
  wchar_t buf[64];
  StringFromGUID2(g, buf, 64);
  std::wstring w(buf);
  return std::string(w.begin(), w.end());
}

class ProviderDll : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string path = "Z:" + std::string(QB_PROVIDER_DLL);
    for (char& c : path) c = c == '/' ? '\\' : c;
    dll_ = LoadLibraryA(path.c_str());
    ASSERT_NE(dll_, nullptr) << "LoadLibrary " << path << " error " << GetLastError();
    using GetClassObject = HRESULT(STDAPICALLTYPE*)(REFCLSID, REFIID, void**);
    auto get = reinterpret_cast<GetClassObject>(
        reinterpret_cast<void*>(GetProcAddress(dll_, "DllGetClassObject")));
    ASSERT_NE(get, nullptr);
    IClassFactory* factory = nullptr;
    ASSERT_EQ(get(GuidOf("{00000000-0000-0000-0000-000000000001}"), IID_IClassFactory,
                  reinterpret_cast<void**>(&factory)),
              CLASS_E_CLASSNOTAVAILABLE);
    ASSERT_EQ(get(GuidOf(kProviderClsid), IID_IClassFactory, reinterpret_cast<void**>(&factory)),
              S_OK);
    ASSERT_EQ(factory->CreateInstance(nullptr, IID_IVssSoftwareSnapshotProvider,
                                      reinterpret_cast<void**>(&provider_)),
              S_OK);
    factory->Release();
    ASSERT_EQ(provider_->QueryInterface(IID_IVssProviderCreateSnapshotSet,
                                        reinterpret_cast<void**>(&create_)),
              S_OK);
  }
  void TearDown() override {
    if (create_) create_->Release();
    if (provider_) provider_->Release();
    if (dll_) {
      using CanUnload = HRESULT(STDAPICALLTYPE*)();
      auto can = reinterpret_cast<CanUnload>(
          reinterpret_cast<void*>(GetProcAddress(dll_, "DllCanUnloadNow")));
      EXPECT_EQ(can(), S_OK) << "objects leaked";
      FreeLibrary(dll_);
    }
  }

  HMODULE dll_ = nullptr;
  IVssSoftwareSnapshotProvider* provider_ = nullptr;
  IVssProviderCreateSnapshotSet* create_ = nullptr;
};

TEST_F(ProviderDll, StaysOutOfSetsTheAgentDidNotArm) {
  WINBOOL supported = TRUE;
  wchar_t volume[] = L"\\\\?\\Volume{0000000d-0000-0000-0000-000000000000}\\";
  ASSERT_EQ(provider_->IsVolumeSupported(volume, &supported), S_OK);
  EXPECT_FALSE(supported);
  GUID set = GuidOf("{12345678-0000-0000-0000-000000000001}");
  EXPECT_EQ(provider_->BeginPrepareSnapshot(set, GUID_NULL, volume, 0), VSS_E_PROVIDER_VETO);
  IVssEnumObject* snapshots = nullptr;
  ASSERT_EQ(provider_->Query(GUID_NULL, VSS_OBJECT_NONE, VSS_OBJECT_SNAPSHOT, &snapshots), S_OK);
  ULONG fetched = 7;
  VSS_OBJECT_PROP prop;
  EXPECT_EQ(snapshots->Next(1, &prop, &fetched), S_FALSE);
  EXPECT_EQ(fetched, 0u);
  snapshots->Release();
}

TEST_F(ProviderDll, CommitHoldsUntilTheAgentReleases) {
  GUID set = GuidOf("{12345678-0000-0000-0000-000000000002}");
  NamedEventProviderLink agent;  // the real Global\ names the DLL uses
  ASSERT_TRUE(agent.Arm(GuidText(set)).ok());
  wchar_t volume[] = L"\\\\?\\Volume{0000000d-0000-0000-0000-000000000000}\\";
  WINBOOL supported = FALSE;
  ASSERT_EQ(provider_->IsVolumeSupported(volume, &supported), S_OK);
  EXPECT_TRUE(supported);
  ASSERT_EQ(provider_->BeginPrepareSnapshot(set, GUID_NULL, volume, 0), S_OK);
  ASSERT_EQ(create_->EndPrepareSnapshots(set), S_OK);
  EXPECT_EQ(create_->CommitSnapshots(set), VSS_E_BAD_STATE) << "commit before pre-commit";
  ASSERT_EQ(create_->PreCommitSnapshots(set), S_OK);
  auto commit = std::async(std::launch::async, [&] { return create_->CommitSnapshots(set); });
  ASSERT_TRUE(agent.WaitHolding(kWait));
  EXPECT_EQ(commit.wait_for(50ms), std::future_status::timeout) << "returned while held";
  agent.Release(true);
  EXPECT_EQ(commit.get(), S_OK);
  EXPECT_EQ(agent.WaitHoldEnd(kWait), HoldEnd::kCommitted);
  EXPECT_EQ(create_->PostCommitSnapshots(set, 1), S_OK);
  agent.Disarm();
}

TEST_F(ProviderDll, AbortReleaseVetoesTheSet) {
  GUID set = GuidOf("{12345678-0000-0000-0000-000000000003}");
  NamedEventProviderLink agent;
  ASSERT_TRUE(agent.Arm(GuidText(set)).ok());
  wchar_t volume[] = L"D:\\";
  ASSERT_EQ(provider_->BeginPrepareSnapshot(set, GUID_NULL, volume, 0), S_OK);
  ASSERT_EQ(create_->EndPrepareSnapshots(set), S_OK);
  ASSERT_EQ(create_->PreCommitSnapshots(set), S_OK);
  agent.Release(false);
  EXPECT_EQ(create_->CommitSnapshots(set), VSS_E_PROVIDER_VETO);
  EXPECT_EQ(agent.WaitHoldEnd(kWait), HoldEnd::kAborted);
  EXPECT_EQ(create_->AbortSnapshots(set), S_OK);
  agent.Disarm();
}

}  // namespace
}  // namespace qb::agent::win
