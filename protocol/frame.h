// Framing for byte streams with no message or connection boundary (virtio-serial above all:
// a new daemon can find half a frame of an old one in the pipe).
//
// Frame layout (little-endian), 20-byte header then payload:
//   0  magic      D1 51 42 46
//   4  version    1
//   5  flags      0 (reserved; readers ignore)
//   6  reserved   0 0
//   8  length     payload bytes (u32)
//   12 crc        CRC32C of the payload (u32)
//   16 hcrc       CRC32C of bytes 0..15 (u32): a corrupted length is caught before it is used
//   20 payload
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace qb::proto {

inline constexpr std::array<std::uint8_t, 4> kFrameMagic = {0xD1, 0x51, 0x42, 0x46};
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 20;
inline constexpr std::size_t kDefaultMaxPayload = 1 << 20;  // 1 MiB

// Appends one frame carrying `payload` to `out`.
void AppendFrame(std::span<const std::uint8_t> payload, std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> EncodeFrame(std::span<const std::uint8_t> payload);

// Incremental frame reader. Feed() bytes as they arrive, then call Next() until it returns
// nothing. Bad bytes are dropped: anything before a magic, frames with a bad header CRC, an
// unknown version, a length over the limit (rejected before any allocation) or a bad payload
// CRC. After a bad frame the reader resynchronizes on the next magic.
//
// A frame cut short (its writer died) followed by new frames: while a frame's payload is
// incomplete, a complete valid frame found inside the bytes it claims wins and the cut frame
// is dropped, so a stale partial frame cannot hold back a new session's Hello.
//
// Memory: the buffer holds at most one pending frame plus what the last Feed() added; callers
// feed bounded reads (e.g. 64 KiB) and drain Next() after each Feed().
class FrameDecoder {
 public:
  struct Stats {
    std::uint64_t frames = 0;         // valid frames delivered
    std::uint64_t bad_frames = 0;     // headers or payloads rejected
    std::uint64_t dropped_bytes = 0;  // bytes skipped while resynchronizing
    std::uint64_t oversize = 0;       // frames whose length was over the limit
  };

  explicit FrameDecoder(std::size_t max_payload = kDefaultMaxPayload);

  void Feed(std::span<const std::uint8_t> bytes);
  // The next complete, valid payload, or nullopt when more bytes are needed.
  std::optional<std::vector<std::uint8_t>> Next();

  // Forgets everything buffered (a new connection on a stream that has boundaries).
  void Reset();

  std::size_t buffered() const { return buf_.size() - start_; }
  std::size_t max_payload() const { return max_payload_; }
  const Stats& stats() const { return stats_; }

 private:
  enum class HeaderCheck { kIncomplete, kBad, kOversize, kOk };
  HeaderCheck CheckHeader(std::size_t pos, std::uint32_t* length) const;
  bool CompleteValidFrameAt(std::size_t pos) const;
  std::size_t FindMagic(std::size_t from) const;
  void Compact();

  std::size_t max_payload_;
  std::vector<std::uint8_t> buf_;
  std::size_t start_ = 0;
  Stats stats_;
};

}  // namespace qb::proto
