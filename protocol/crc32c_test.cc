#include "protocol/crc32c.h"

#include <gtest/gtest.h>

#include <string_view>

namespace qb::proto {
namespace {

std::uint32_t Of(std::string_view s) {
  return Crc32c({reinterpret_cast<const std::uint8_t*>(s.data()), s.size()});
}

TEST(Crc32c, CheckValueOfTheCastagnoliPolynomial) {
  // The standard check value (RFC 3720, B.4) distinguishes CRC32C from plain CRC32 (0xCBF43926).
  EXPECT_EQ(Of("123456789"), 0xE3069283u);
}

TEST(Crc32c, EmptyAndThirtyTwoZeros) {
  EXPECT_EQ(Of(""), 0u);
  std::uint8_t zeros[32] = {};
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);  // RFC 3720 B.4 test vector
}

}  // namespace
}  // namespace qb::proto
