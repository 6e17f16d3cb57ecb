#include "guest-agent/windows/device_id.h"

#include <cstdio>

namespace qb::agent::win {

namespace {

std::uint32_t Le32(std::span<const std::uint8_t> b, std::size_t off) {
  if (off + 4 > b.size()) return 0;
  return static_cast<std::uint32_t>(b[off]) | static_cast<std::uint32_t>(b[off + 1]) << 8 |
         static_cast<std::uint32_t>(b[off + 2]) << 16 |
         static_cast<std::uint32_t>(b[off + 3]) << 24;
}
std::uint16_t Le16(std::span<const std::uint8_t> b, std::size_t off) {
  if (off + 2 > b.size()) return 0;
  return static_cast<std::uint16_t>(b[off] | b[off + 1] << 8);
}

std::string Hex(std::span<const std::uint8_t> bytes) {
  std::string out;
  char buf[3];
  for (auto byte : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", byte);
    out += buf;
  }
  return out;
}

std::string CString(std::span<const std::uint8_t> b, std::uint32_t off) {
  if (off == 0 || off >= b.size()) return {};
  std::string s;
  for (std::size_t i = off; i < b.size() && b[i] != 0; ++i) s.push_back(static_cast<char>(b[i]));
  const auto first = s.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}

}  // namespace

std::string WwnFromDeviceIdDescriptor(std::span<const std::uint8_t> d) {
  // STORAGE_DEVICE_ID_DESCRIPTOR: Version u32, Size u32, NumberOfIdentifiers u32, then
  // STORAGE_IDENTIFIER records: CodeSet u32, Type u32, IdentifierSize u16, NextOffset u16,
  // Association u32, Identifier[IdentifierSize].
  constexpr std::size_t kHeader = 12, kIdHeader = 16;
  const std::size_t size = std::min<std::size_t>(d.size(), Le32(d, 4) ? Le32(d, 4) : d.size());
  d = d.first(size);
  const std::uint32_t count = Le32(d, 8);
  std::string eui;
  std::size_t off = kHeader;
  for (std::uint32_t i = 0; i < count && off + kIdHeader <= d.size(); ++i) {
    const std::uint32_t type = Le32(d, off + 4);
    const std::uint16_t length = Le16(d, off + 8);
    const std::uint16_t next = Le16(d, off + 10);
    const std::uint32_t association = Le32(d, off + 12);
    if (off + kIdHeader + length > d.size()) break;
    auto id = d.subspan(off + kIdHeader, length);
    if (association == 0 && length > 0) {
      if (type == 3) return Hex(id);
      if (type == 2 && eui.empty()) eui = Hex(id);
    }
    if (next == 0) break;
    off += next;
  }
  return eui;
}

DeviceDescription DescribeDevice(std::span<const std::uint8_t> d) {
  // STORAGE_DEVICE_DESCRIPTOR: Version u32, Size u32, DeviceType u8, DeviceTypeModifier u8,
  // RemovableMedia u8, CommandQueueing u8, VendorIdOffset u32 (12), ProductIdOffset u32 (16),
  // ProductRevisionOffset u32 (20), SerialNumberOffset u32 (24), BusType u32 (28).
  DeviceDescription out;
  out.vendor = CString(d, Le32(d, 12));
  out.model = CString(d, Le32(d, 16));
  out.serial = CString(d, Le32(d, 24));
  switch (Le32(d, 28)) {
    case 1:
      out.bus = "scsi";
      break;
    case 2:
      out.bus = "atapi";
      break;
    case 3:
      out.bus = "ata";
      break;
    case 6:
      out.bus = "fibre";
      break;
    case 7:
      out.bus = "usb";
      break;
    case 9:
      out.bus = "iscsi";
      break;
    case 10:
      out.bus = "sas";
      break;
    case 11:
      out.bus = "sata";
      break;
    case 17:
      out.bus = "nvme";
      break;
    case 0xe:
      out.bus = "virtual";
      break;
    default:
      out.bus = "unknown";
      break;
  }
  return out;
}

}  // namespace qb::agent::win
