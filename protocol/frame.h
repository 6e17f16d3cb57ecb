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
#include <deque>
#include <functional>
#include <optional>
#include <queue>
#include <set>
#include <span>
#include <utility>
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
// Work is linear in the bytes fed, whatever they are (the bytes come from an untrusted guest
// and are decoded on its link's strand). Every byte is hashed once by a running CRC; a header
// found at any offset is checked once (16 bytes of header CRC) and its payload CRC is then
// derived in O(log length) from the running CRC at its payload's start and end
// (Crc32cOfSuffix), never by hashing its payload again; the buffer is compacted only when the
// consumed prefix is at least as large as what stays, so bytes moved <= bytes consumed. Hence,
// for any input, stats().work() <= kWorkPerByteFed * stats().bytes_fed + kWorkSlack (a test
// and the fuzz target hold the reader to it). A reader that re-checked every candidate frame
// on each Feed() did work quadratic in the nested headers a guest can pack into one claimed
// megabyte (seconds of CPU per byte fed).
//
// Memory: the buffer holds at most one pending frame plus what the last Feed() added; a 32-byte
// record per valid frame header in it, at most max_payload / 20 + 4096 of them (bad headers
// are counted, not kept); and a 16-byte end marker per valid header found in the last
// max_payload bytes of the stream (a header's claimed end lies at most that far on). Callers
// feed bounded reads (e.g. 64 KiB) and drain Next() after each Feed().
class FrameDecoder {
 public:
  struct Stats {
    std::uint64_t frames = 0;         // valid frames delivered
    std::uint64_t bad_frames = 0;     // headers (wherever found) or payloads rejected
    std::uint64_t dropped_bytes = 0;  // bytes skipped while resynchronizing
    std::uint64_t oversize = 0;       // frames whose length was over the limit
    // The work counter (units: bytes hashed or moved).
    std::uint64_t bytes_fed = 0;
    std::uint64_t bytes_hashed = 0;     // running CRC plus header CRCs
    std::uint64_t bytes_moved = 0;      // compaction
    std::uint64_t crc_derivations = 0;  // payload CRCs derived without hashing (Crc32cOfSuffix)

    std::uint64_t work() const {
      return bytes_hashed + bytes_moved + kDerivationCost * crc_derivations;
    }
  };
  // A derivation is at most 64 GF(2) products of 32 steps: counted as hashing this many bytes.
  static constexpr std::uint64_t kDerivationCost = 64;
  // Per byte fed: 1 (running CRC) + 16 / 4 (a header every 4 bytes at most: the magic cannot
  // overlap itself) + kDerivationCost / 5 (a valid header's version byte keeps the next one at
  // least 5 bytes on) + 1 (compaction), rounded up.
  static constexpr std::uint64_t kWorkPerByteFed = 20;
  static constexpr std::uint64_t kWorkSlack = 4096;

  explicit FrameDecoder(std::size_t max_payload = kDefaultMaxPayload);

  void Feed(std::span<const std::uint8_t> bytes);
  // The next complete, valid payload, or nullopt when more bytes are needed.
  std::optional<std::vector<std::uint8_t>> Next();

  // Forgets everything buffered (a new connection on a stream that has boundaries).
  void Reset();

  std::size_t buffered() const { return static_cast<std::size_t>(end() - start_); }
  std::size_t max_payload() const { return max_payload_; }
  const Stats& stats() const { return stats_; }

 private:
  // A frame header found in the stream. Positions are stream offsets since the last Reset().
  struct Candidate {
    enum class Verdict { kPending, kGood, kBadPayload };
    std::uint64_t pos = 0;
    std::uint64_t end = 0;             // one past its payload
    std::uint32_t payload_crc = 0;     // as the header claims
    std::uint32_t crc_at_payload = 0;  // running CRC when its payload began
    Verdict verdict = Verdict::kPending;
  };

  std::uint64_t end() const { return base_ + buf_.size(); }
  const std::uint8_t* At(std::uint64_t pos) const { return buf_.data() + (pos - base_); }
  Candidate* Find(std::uint64_t pos);
  void ScanHeaders();
  void AdvanceCrc();
  void Resolve(Candidate& c);
  void DropBefore(std::uint64_t pos);
  void Compact();

  std::size_t max_payload_;
  // Valid headers kept at once. Honest frames do not overlap, so the buffer (one pending frame
  // plus a read of up to 64 KiB) holds fewer than this; a header past it counts as bad.
  std::size_t max_candidates_;
  std::vector<std::uint8_t> buf_;  // stream bytes [base_, end())
  std::uint64_t base_ = 0;
  std::uint64_t start_ = 0;    // first byte not yet delivered or dropped
  std::uint64_t scan_ = 0;     // first offset not yet examined as a header start
  std::uint64_t crc_pos_ = 0;  // the running CRC covers [0, crc_pos_)
  std::uint32_t crc_ = 0;
  std::deque<Candidate> candidates_;  // by pos, all >= start_
  // Pending candidates' payload starts (ascending as found) and ends (a min-heap), the points
  // where the running CRC must stop to record or resolve.
  std::deque<std::uint64_t> payload_starts_;
  using EndAndPos = std::pair<std::uint64_t, std::uint64_t>;
  std::priority_queue<EndAndPos, std::vector<EndAndPos>, std::greater<>> payload_ends_;
  std::set<std::uint64_t> good_;  // positions of complete valid candidates
  Stats stats_;
};

}  // namespace qb::proto
