// Disk identity from the bytes Windows returns for IOCTL_STORAGE_QUERY_PROPERTY: the storage
// device-id descriptor (SCSI VPD page 0x83 designators) and the device descriptor (vendor,
// product, serial, bus). Pure functions over untrusted bytes (a LUN's firmware writes them):
// every offset and length is checked before use.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace qb::agent::win {

// The LUN's NAA / WWN as lower-case hex without prefix (as the Linux agent reports it), from a
// STORAGE_DEVICE_ID_DESCRIPTOR: the first designator of type NAA (FCPH name, 3) associated with
// the logical unit (association 0); else an EUI-64 (2); else "".
std::string WwnFromDeviceIdDescriptor(std::span<const std::uint8_t> descriptor);

struct DeviceDescription {
  std::string vendor;
  std::string model;
  std::string serial;
  std::string bus;  // scsi, sas, ata, sata, nvme, virtio, usb, iscsi, fibre, unknown
};

// From a STORAGE_DEVICE_DESCRIPTOR (strings trimmed; offsets outside the buffer are ignored).
DeviceDescription DescribeDevice(std::span<const std::uint8_t> descriptor);

}  // namespace qb::agent::win
