#include "protocol/crc32c.h"

#include <array>
#include <boost/crc.hpp>

namespace qb::proto {
namespace {

using Crc32cEngine = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

// The reflected polynomial: bit 31 is the coefficient of x^0, bit 0 that of x^31.
constexpr std::uint32_t kReflectedPoly = 0x82F63B78;
constexpr std::uint32_t kOne = 0x80000000;  // the polynomial 1 in reflected order

constexpr std::uint32_t Reflect(std::uint32_t v) {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i, v >>= 1) r = (r << 1) | (v & 1);
  return r;
}

// a * b modulo the CRC polynomial, both in reflected order.
constexpr std::uint32_t MulMod(std::uint32_t a, std::uint32_t b) {
  std::uint32_t product = 0;
  for (std::uint32_t bit = kOne; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kReflectedPoly : b >> 1;  // b *= x
  }
  return product;
}

// kPow2[k] = x^(2^k * 8) mod P: the factor that appends 2^k zero bytes to a CRC register.
constexpr std::array<std::uint32_t, 64> MakeZeroBytePowers() {
  std::array<std::uint32_t, 64> powers{};
  std::uint32_t x_pow = kOne >> 8;  // x^8: one zero byte
  for (auto& p : powers) {
    p = x_pow;
    x_pow = MulMod(x_pow, x_pow);
  }
  return powers;
}
constexpr std::array<std::uint32_t, 64> kZeroBytePowers = MakeZeroBytePowers();

// x^(8 n) mod P.
std::uint32_t ZeroBytesFactor(std::uint64_t n) {
  std::uint32_t factor = kOne;
  for (int k = 0; n != 0; ++k, n >>= 1) {
    if (n & 1) factor = MulMod(factor, kZeroBytePowers[static_cast<std::size_t>(k)]);
  }
  return factor;
}

}  // namespace

std::uint32_t Crc32c(std::span<const std::uint8_t> data) { return Crc32cExtend(0, data); }

std::uint32_t Crc32cExtend(std::uint32_t crc_of_a, std::span<const std::uint8_t> data) {
  // The engine's register after A is ~Crc32c(A); it takes an initial register in
  // unreflected bit order.
  Crc32cEngine engine(Reflect(crc_of_a ^ 0xFFFFFFFF));
  engine.process_bytes(data.data(), data.size());
  return engine.checksum();
}

std::uint32_t Crc32cOfSuffix(std::uint32_t crc_of_a, std::uint32_t crc_of_ab,
                             std::uint64_t length_of_b) {
  // CRC32C is affine: Crc32c(A||B) = Crc32c(A) * x^(8|B|) + Crc32c(B) (mod P), the all-ones
  // init and final XOR cancelling out. So Crc32c(B) = Crc32c(A||B) + Crc32c(A) * x^(8|B|).
  return crc_of_ab ^ MulMod(crc_of_a, ZeroBytesFactor(length_of_b));
}

}  // namespace qb::proto
