// The frame reader as it was before its work was bounded: straightforward and quadratic. Kept
// for tests only, as the model the bounded FrameDecoder must agree with frame for frame, and to
// show that the work-bound tests fail on a reader that re-checks candidates on every call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "protocol/crc32c.h"
#include "protocol/frame.h"

namespace qb::proto::testing {

class ReferenceFrameDecoder {
 public:
  explicit ReferenceFrameDecoder(std::size_t max_payload) : max_payload_(max_payload) {}

  // Bytes hashed (payload and header CRCs) and moved (compaction) so far.
  std::uint64_t work() const { return work_; }

  void Feed(std::span<const std::uint8_t> bytes) {
    if (start_ != 0) {
      work_ += buf_.size() - start_;
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
      start_ = 0;
    }
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  }

  std::optional<std::vector<std::uint8_t>> Next() {
    for (;;) {
      std::size_t pos = FindMagic(start_);
      if (pos == buf_.size()) {
        std::size_t keep = std::min<std::size_t>(buf_.size() - start_, kFrameMagic.size() - 1);
        std::size_t drop = buf_.size() - start_ - keep;
        while (keep > 0 &&
               std::memcmp(buf_.data() + buf_.size() - keep, kFrameMagic.data(), keep) != 0) {
          --keep;
          ++drop;
        }
        start_ += drop;
        return std::nullopt;
      }
      start_ = pos;
      std::uint32_t length = 0;
      Check check = CheckHeader(start_, &length);
      if (check == Check::kIncomplete) return std::nullopt;
      if (check == Check::kBad) {
        ++start_;
        continue;
      }
      std::size_t frame_end = start_ + kFrameHeaderSize + length;
      if (buf_.size() < frame_end) {
        for (std::size_t cand = FindMagic(start_ + 1); cand < buf_.size();
             cand = FindMagic(cand + 1)) {
          if (CompleteValidFrameAt(cand)) {
            start_ = cand;
            break;
          }
        }
        if (start_ != pos) continue;
        return std::nullopt;
      }
      const std::uint8_t* h = buf_.data() + start_;
      if (GetU32(h + 12) != Hash(h + kFrameHeaderSize, length)) {
        ++start_;
        continue;
      }
      std::vector<std::uint8_t> out(h + kFrameHeaderSize, h + kFrameHeaderSize + length);
      start_ = frame_end;
      return out;
    }
  }

 private:
  enum class Check { kIncomplete, kBad, kOk };

  static std::uint32_t GetU32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
  }
  std::uint32_t Hash(const std::uint8_t* p, std::size_t n) {
    work_ += n;
    return Crc32c(std::span<const std::uint8_t>(p, n));
  }
  std::size_t FindMagic(std::size_t from) const {
    for (; from < buf_.size(); ++from) {
      std::size_t avail = std::min(buf_.size() - from, kFrameMagic.size());
      if (std::memcmp(buf_.data() + from, kFrameMagic.data(), avail) == 0) return from;
    }
    return buf_.size();
  }
  Check CheckHeader(std::size_t pos, std::uint32_t* length) {
    if (buf_.size() - pos < kFrameHeaderSize) return Check::kIncomplete;
    const std::uint8_t* h = buf_.data() + pos;
    if (GetU32(h + 16) != Hash(h, 16) || h[4] != kFrameVersion) return Check::kBad;
    *length = GetU32(h + 8);
    return *length > max_payload_ ? Check::kBad : Check::kOk;
  }
  bool CompleteValidFrameAt(std::size_t pos) {
    std::uint32_t length = 0;
    if (CheckHeader(pos, &length) != Check::kOk) return false;
    if (buf_.size() - pos - kFrameHeaderSize < length) return false;
    const std::uint8_t* h = buf_.data() + pos;
    return GetU32(h + 12) == Hash(h + kFrameHeaderSize, length);
  }

  std::size_t max_payload_;
  std::vector<std::uint8_t> buf_;
  std::size_t start_ = 0;
  std::uint64_t work_ = 0;
};

}  // namespace qb::proto::testing
