#include "protocol/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

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

std::vector<std::uint8_t> Random(std::mt19937& rng, std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

TEST(Crc32c, ExtendEqualsOneShot) {
  std::mt19937 rng(7);
  for (std::size_t a_len : {0u, 1u, 3u, 64u, 1000u}) {
    for (std::size_t b_len : {0u, 1u, 5u, 4096u}) {
      auto a = Random(rng, a_len);
      auto b = Random(rng, b_len);
      std::vector<std::uint8_t> ab = a;
      ab.insert(ab.end(), b.begin(), b.end());
      EXPECT_EQ(Crc32cExtend(Crc32c(a), b), Crc32c(ab)) << a_len << "+" << b_len;
    }
  }
  EXPECT_EQ(Crc32cExtend(0, std::span<const std::uint8_t>()), 0u);
}

TEST(Crc32c, SuffixFromTwoPrefixCrcsWithoutItsBytes) {
  std::mt19937 rng(11);
  for (std::size_t a_len : {0u, 1u, 20u, 777u}) {
    for (std::size_t b_len : {0u, 1u, 2u, 7u, 8u, 255u, 256u, 65537u, 1u << 20}) {
      auto a = Random(rng, a_len);
      auto b = Random(rng, b_len);
      std::vector<std::uint8_t> ab = a;
      ab.insert(ab.end(), b.begin(), b.end());
      EXPECT_EQ(Crc32cOfSuffix(Crc32c(a), Crc32c(ab), b_len), Crc32c(b)) << a_len << "+" << b_len;
    }
  }
}

}  // namespace
}  // namespace qb::proto
