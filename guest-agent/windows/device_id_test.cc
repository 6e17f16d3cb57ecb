#include "guest-agent/windows/device_id.h"

#include <gtest/gtest.h>

#include <vector>

namespace qb::agent::win {
namespace {

void Put32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void Put16(std::vector<std::uint8_t>& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void AddId(std::vector<std::uint8_t>& b, std::uint32_t type, std::uint32_t assoc,
           std::vector<std::uint8_t> id, bool last = false) {
  const std::uint16_t next = static_cast<std::uint16_t>(last ? 0 : 16 + id.size());
  Put32(b, 1);  // binary code set
  Put32(b, type);
  Put16(b, static_cast<std::uint16_t>(id.size()));
  Put16(b, next);
  Put32(b, assoc);
  b.insert(b.end(), id.begin(), id.end());
}
std::vector<std::uint8_t> Descriptor(std::uint32_t count) {
  std::vector<std::uint8_t> b;
  Put32(b, 1);
  Put32(b, 0);  // size: 0 = whole buffer
  Put32(b, count);
  return b;
}

TEST(DeviceId, PicksTheLogicalUnitsNaa) {
  auto d = Descriptor(3);
  AddId(d, 1, 0, {'P', 'U', 'R', 'E'});                              // vendor id
  AddId(d, 3, 1, {0x50, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07});  // target port NAA: not ours
  AddId(d, 3, 0,
        {0x62, 0x4a, 0x93, 0x70, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0x00, 0x01, 0x02,
         0x03},
        true);
  EXPECT_EQ(WwnFromDeviceIdDescriptor(d), "624a9370abcdef012345678900010203");
}

TEST(DeviceId, FallsBackToEui64ThenNothing) {
  auto d = Descriptor(1);
  AddId(d, 2, 0, {1, 2, 3, 4, 5, 6, 7, 8}, true);
  EXPECT_EQ(WwnFromDeviceIdDescriptor(d), "0102030405060708");
  auto none = Descriptor(1);
  AddId(none, 1, 0, {'X'}, true);
  EXPECT_EQ(WwnFromDeviceIdDescriptor(none), "");
}

TEST(DeviceId, HostileLengthsAndCountsStayInsideTheBuffer) {
  auto d = Descriptor(1000000);
  AddId(d, 3, 0, {1, 2, 3, 4});
  d.resize(d.size() - 2);  // identifier cut short
  EXPECT_EQ(WwnFromDeviceIdDescriptor(d), "");
  auto loop = Descriptor(5);
  AddId(loop, 1, 0, {'a'});
  loop[12 + 10] = 0;  // NextOffset 0: stop, don't spin
  EXPECT_EQ(WwnFromDeviceIdDescriptor(loop), "");
  EXPECT_EQ(WwnFromDeviceIdDescriptor({}), "");
}

TEST(DeviceId, DescribesVendorModelSerialAndBus) {
  std::vector<std::uint8_t> d(64, 0);
  auto put = [&](std::size_t off, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      d[off + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  put(12, 36);
  put(16, 44);
  put(24, 56);
  put(28, 1);
  const char vendor[] = "PURE   ", model[] = "Flash  ", serial[] = " LUN01 ";
  std::copy(vendor, vendor + 7, d.begin() + 36);
  std::copy(model, model + 7, d.begin() + 44);
  std::copy(serial, serial + 7, d.begin() + 56);
  d.push_back(0);
  auto desc = DescribeDevice(d);
  EXPECT_EQ(desc.vendor, "PURE");
  EXPECT_EQ(desc.model, "Flash");
  EXPECT_EQ(desc.serial, "LUN01");
  EXPECT_EQ(desc.bus, "scsi");
  put(16, 1000);  // offset outside the buffer
  EXPECT_EQ(DescribeDevice(d).model, "");
}

}  // namespace
}  // namespace qb::agent::win
