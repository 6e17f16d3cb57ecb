#include "protocol/crc32c.h"

#include <boost/crc.hpp>

namespace qb::proto {

std::uint32_t Crc32c(std::span<const std::uint8_t> data) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

}  // namespace qb::proto
