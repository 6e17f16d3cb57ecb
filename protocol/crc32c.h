// CRC32C (Castagnoli), as used by iSCSI and ext4: polynomial 0x1EDC6F41, reflected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qb::proto {

// CRC32C of `data`. Crc32c("123456789") == 0xE3069283.
std::uint32_t Crc32c(std::span<const std::uint8_t> data);

}  // namespace qb::proto
