// CRC32C (Castagnoli), as used by iSCSI and ext4: polynomial 0x1EDC6F41, reflected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace qb::proto {

// CRC32C of `data`. Crc32c("123456789") == 0xE3069283.
std::uint32_t Crc32c(std::span<const std::uint8_t> data);

// CRC32C of A||data, given crc_of_a == Crc32c(A). Crc32cExtend(0, x) == Crc32c(x).
std::uint32_t Crc32cExtend(std::uint32_t crc_of_a, std::span<const std::uint8_t> data);

// CRC32C of the last `length_of_b` bytes of A||B, from the CRCs of A and of A||B alone:
// Crc32cOfSuffix(Crc32c(A), Crc32c(A||B), |B|) == Crc32c(B). O(log |B|) work, independent of
// the bytes themselves, so a reader that keeps a running CRC can check any number of
// overlapping frames without hashing their payloads again.
std::uint32_t Crc32cOfSuffix(std::uint32_t crc_of_a, std::uint32_t crc_of_ab,
                             std::uint64_t length_of_b);

}  // namespace qb::proto
