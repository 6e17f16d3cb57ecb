// Windows volume and disk inventory: volume GUID paths (FindFirstVolume), their mount points,
// file systems and disk extents, and each disk's identity from its storage descriptors.
// Runs under Wine (which reports its own drives, without SCSI identity); real LUN identities
// need real Windows.
// clang-format off
#include <windows.h>
#include <winioctl.h>
// clang-format on

#include <map>
#include <vector>

#include "guest-agent/windows/device_id.h"
#include "guest-agent/windows/volume_inventory.h"

namespace qb::agent::win {

namespace {

std::string Narrow(const wchar_t* w) {
  if (!w || !*w) return {};
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
  std::string s(static_cast<std::size_t>(n > 0 ? n - 1 : 0), '\0');
  if (n > 1) WideCharToMultiByte(CP_UTF8, 0, w, -1, s.data(), n, nullptr, nullptr);
  return s;
}

class FileHandle {
 public:
  explicit FileHandle(HANDLE h) : h_(h) {}
  ~FileHandle() {
    if (valid()) CloseHandle(h_);
  }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  bool valid() const { return h_ != INVALID_HANDLE_VALUE && h_ != nullptr; }
  HANDLE get() const { return h_; }

 private:
  HANDLE h_;
};

FileHandle OpenForQuery(const std::wstring& path) {
  return FileHandle(CreateFileW(path.c_str(), 0, FILE_SHARE_READ | FILE_SHARE_WRITE, nullptr,
                                OPEN_EXISTING, 0, nullptr));
}

std::vector<std::uint8_t> QueryProperty(HANDLE h, STORAGE_PROPERTY_ID id) {
  STORAGE_PROPERTY_QUERY query{};
  query.PropertyId = id;
  query.QueryType = PropertyStandardQuery;
  std::vector<std::uint8_t> out(4096);
  DWORD got = 0;
  if (!DeviceIoControl(h, IOCTL_STORAGE_QUERY_PROPERTY, &query, sizeof query, out.data(),
                       static_cast<DWORD>(out.size()), &got, nullptr)) {
    return {};
  }
  out.resize(got);
  return out;
}

proto::Disk DescribeDisk(DWORD number) {
  proto::Disk disk;
  disk.name = "PhysicalDrive" + std::to_string(number);
  disk.bus = "unknown";
  FileHandle h = OpenForQuery(L"\\\\.\\PhysicalDrive" + std::to_wstring(number));
  if (!h.valid()) return disk;
  auto device = QueryProperty(h.get(), StorageDeviceProperty);
  if (!device.empty()) {
    DeviceDescription d = DescribeDevice(device);
    disk.vendor = d.vendor;
    disk.model = d.model;
    disk.serial = d.serial;
    disk.bus = d.bus;
  }
  auto ids = QueryProperty(h.get(), StorageDeviceIdProperty);
  if (!ids.empty()) disk.wwn = WwnFromDeviceIdDescriptor(ids);
  GET_LENGTH_INFORMATION length{};
  DWORD got = 0;
  if (DeviceIoControl(h.get(), IOCTL_DISK_GET_LENGTH_INFO, nullptr, 0, &length, sizeof length, &got,
                      nullptr)) {
    disk.size_bytes = static_cast<std::uint64_t>(length.Length.QuadPart);
  }
  return disk;
}

class WindowsInventory final : public VolumeInventory {
 public:
  Result<proto::Inventory> Collect() override {
    proto::Inventory inv;
    std::map<DWORD, bool> disks;
    wchar_t name[MAX_PATH];
    HANDLE find = FindFirstVolumeW(name, MAX_PATH);
    if (find == INVALID_HANDLE_VALUE) {
      return Error(Code::kIoError, "FindFirstVolume: error " + std::to_string(GetLastError()));
    }
    do {
      proto::Volume v;
      v.name = Narrow(name);
      wchar_t paths[4096] = {};
      DWORD len = 0;
      if (GetVolumePathNamesForVolumeNameW(name, paths, 4096, &len)) {
        for (const wchar_t* p = paths; *p; p += wcslen(p) + 1) v.mount_points.push_back(Narrow(p));
      }
      wchar_t fs[MAX_PATH + 1] = {};
      if (GetVolumeInformationW(name, nullptr, 0, nullptr, nullptr, nullptr, fs, MAX_PATH + 1)) {
        v.fs_type = Narrow(fs);
      }
      ULARGE_INTEGER total{};
      if (GetDiskFreeSpaceExW(name, nullptr, &total, nullptr)) v.size_bytes = total.QuadPart;
      v.freezable = v.fs_type == "NTFS" || v.fs_type == "ReFS";
      // Disk extents: open the volume without its trailing backslash.
      std::wstring device(name);
      if (!device.empty() && device.back() == L'\\') device.pop_back();
      FileHandle vol = OpenForQuery(device);
      if (vol.valid()) {
        std::vector<std::uint8_t> buf(sizeof(VOLUME_DISK_EXTENTS) + 31 * sizeof(DISK_EXTENT));
        DWORD got = 0;
        if (DeviceIoControl(vol.get(), IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS, nullptr, 0, buf.data(),
                            static_cast<DWORD>(buf.size()), &got, nullptr)) {
          auto* extents = reinterpret_cast<VOLUME_DISK_EXTENTS*>(buf.data());
          for (DWORD i = 0; i < extents->NumberOfDiskExtents && i < 32; ++i) {
            const DWORD n = extents->Extents[i].DiskNumber;
            v.disk_names.push_back("PhysicalDrive" + std::to_string(n));
            disks[n] = true;
          }
        }
      }
      v.device = Narrow(device.c_str());
      inv.volumes.push_back(std::move(v));
    } while (FindNextVolumeW(find, name, MAX_PATH));
    FindVolumeClose(find);
    for (const auto& [number, unused] : disks) inv.disks.push_back(DescribeDisk(number));
    return inv;
  }
};

}  // namespace

std::unique_ptr<VolumeInventory> MakeWindowsInventory() {
  return std::make_unique<WindowsInventory>();
}

proto::OsInfo WindowsOsInfo() {
  proto::OsInfo os;
  os.family = proto::OsFamily::kWindows;
  os.name = "Windows";
  using RtlGetVersionFn = LONG(WINAPI*)(OSVERSIONINFOW*);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  auto get = ntdll ? reinterpret_cast<RtlGetVersionFn>(
                         reinterpret_cast<void*>(GetProcAddress(ntdll, "RtlGetVersion")))
                   : nullptr;
  OSVERSIONINFOW v{};
  v.dwOSVersionInfoSize = sizeof v;
  if (get && get(&v) == 0) {
    os.version = std::to_string(v.dwMajorVersion) + "." + std::to_string(v.dwMinorVersion) + "." +
                 std::to_string(v.dwBuildNumber);
  }
  wchar_t host[MAX_COMPUTERNAME_LENGTH + 1];
  DWORD size = MAX_COMPUTERNAME_LENGTH + 1;
  if (GetComputerNameW(host, &size)) os.host_name = Narrow(host);
  return os;
}

}  // namespace qb::agent::win
