// Identity of the quiesce-bridge VSS provider. Fixed forever: the requester names the provider
// by kProviderId in AddToSnapshotSet, --install registers it under these ids.
#pragma once

namespace qb::agent::win {

// VSS provider id (IVssAdmin::RegisterProvider, AddToSnapshotSet).
inline constexpr const char* kProviderId = "{ae669392-35c7-4985-9055-57fa3b2c837a}";
// Provider version id.
inline constexpr const char* kProviderVersionId = "{7a1ff4c2-e0a8-4414-8fce-9ff30483b8f7}";
// CLSID of the provider's COM class (in qb-vss-provider.dll, a COM+ server application).
inline constexpr const char* kProviderClsid = "{b176de2e-a950-4cbb-8878-4d75b6aee8b7}";
inline constexpr const char* kProviderName = "quiesce-bridge VSS provider";
inline constexpr const char* kProviderVersion = "0.1.0";
// COM+ application holding the provider DLL.
inline constexpr const char* kComPlusApplication = "quiesce-bridge VSS provider";

}  // namespace qb::agent::win
