#include "protocol/frame.h"

#include <algorithm>
#include <cstring>

#include "protocol/crc32c.h"

namespace qb::proto {
namespace {

void PutU32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
  p[2] = static_cast<std::uint8_t>(v >> 16);
  p[3] = static_cast<std::uint8_t>(v >> 24);
}

std::uint32_t GetU32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

void AppendFrame(std::span<const std::uint8_t> payload, std::vector<std::uint8_t>& out) {
  std::uint8_t header[kFrameHeaderSize] = {};
  std::memcpy(header, kFrameMagic.data(), kFrameMagic.size());
  header[4] = kFrameVersion;
  PutU32(header + 8, static_cast<std::uint32_t>(payload.size()));
  PutU32(header + 12, Crc32c(payload));
  PutU32(header + 16, Crc32c(std::span<const std::uint8_t>(header, 16)));
  out.insert(out.end(), header, header + kFrameHeaderSize);
  out.insert(out.end(), payload.begin(), payload.end());
}

std::vector<std::uint8_t> EncodeFrame(std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out;
  out.reserve(kFrameHeaderSize + payload.size());
  AppendFrame(payload, out);
  return out;
}

FrameDecoder::FrameDecoder(std::size_t max_payload) : max_payload_(max_payload) {}

void FrameDecoder::Feed(std::span<const std::uint8_t> bytes) {
  Compact();
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

void FrameDecoder::Reset() {
  buf_.clear();
  start_ = 0;
}

void FrameDecoder::Compact() {
  if (start_ == 0) return;
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
  start_ = 0;
}

std::size_t FrameDecoder::FindMagic(std::size_t from) const {
  const std::uint8_t* base = buf_.data();
  std::size_t end = buf_.size();
  while (from < end) {
    const void* hit = std::memchr(base + from, kFrameMagic[0], end - from);
    if (hit == nullptr) return end;
    std::size_t pos = static_cast<std::size_t>(static_cast<const std::uint8_t*>(hit) - base);
    std::size_t avail = std::min(end - pos, kFrameMagic.size());
    if (std::memcmp(base + pos, kFrameMagic.data(), avail) == 0) return pos;
    from = pos + 1;
  }
  return end;
}

FrameDecoder::HeaderCheck FrameDecoder::CheckHeader(std::size_t pos, std::uint32_t* length) const {
  if (buf_.size() - pos < kFrameHeaderSize) return HeaderCheck::kIncomplete;
  const std::uint8_t* h = buf_.data() + pos;
  if (GetU32(h + 16) != Crc32c(std::span<const std::uint8_t>(h, 16))) return HeaderCheck::kBad;
  if (h[4] != kFrameVersion) return HeaderCheck::kBad;
  *length = GetU32(h + 8);
  if (*length > max_payload_) return HeaderCheck::kOversize;
  return HeaderCheck::kOk;
}

bool FrameDecoder::CompleteValidFrameAt(std::size_t pos) const {
  std::uint32_t length = 0;
  if (CheckHeader(pos, &length) != HeaderCheck::kOk) return false;
  if (buf_.size() - pos - kFrameHeaderSize < length) return false;
  const std::uint8_t* h = buf_.data() + pos;
  return GetU32(h + 12) == Crc32c(std::span<const std::uint8_t>(h + kFrameHeaderSize, length));
}

std::optional<std::vector<std::uint8_t>> FrameDecoder::Next() {
  for (;;) {
    std::size_t pos = FindMagic(start_);
    if (pos == buf_.size()) {
      // Keep a possible partial magic at the tail; drop the rest.
      std::size_t keep = std::min<std::size_t>(buf_.size() - start_, kFrameMagic.size() - 1);
      std::size_t drop = buf_.size() - start_ - keep;
      // Only keep tail bytes that could begin a magic.
      while (keep > 0 &&
             std::memcmp(buf_.data() + buf_.size() - keep, kFrameMagic.data(), keep) != 0) {
        --keep;
        ++drop;
      }
      stats_.dropped_bytes += drop;
      start_ += drop;
      return std::nullopt;
    }
    stats_.dropped_bytes += pos - start_;
    start_ = pos;

    std::uint32_t length = 0;
    switch (CheckHeader(start_, &length)) {
      case HeaderCheck::kIncomplete:
        return std::nullopt;
      case HeaderCheck::kOversize:
        ++stats_.oversize;
        [[fallthrough]];
      case HeaderCheck::kBad:
        ++stats_.bad_frames;
        ++stats_.dropped_bytes;
        ++start_;
        continue;
      case HeaderCheck::kOk:
        break;
    }

    std::size_t frame_end = start_ + kFrameHeaderSize + length;
    if (buf_.size() < frame_end) {
      // Incomplete. If a whole valid frame already sits inside the claimed bytes, this one was
      // cut short by a dead writer: skip to the newer frame.
      for (std::size_t cand = FindMagic(start_ + 1); cand < buf_.size();
           cand = FindMagic(cand + 1)) {
        if (CompleteValidFrameAt(cand)) {
          ++stats_.bad_frames;
          stats_.dropped_bytes += cand - start_;
          start_ = cand;
          break;
        }
      }
      if (start_ != pos) continue;
      return std::nullopt;
    }

    const std::uint8_t* h = buf_.data() + start_;
    std::span<const std::uint8_t> payload(h + kFrameHeaderSize, length);
    if (GetU32(h + 12) != Crc32c(payload)) {
      ++stats_.bad_frames;
      ++stats_.dropped_bytes;
      ++start_;
      continue;
    }
    std::vector<std::uint8_t> out(payload.begin(), payload.end());
    start_ = frame_end;
    ++stats_.frames;
    return out;
  }
}

}  // namespace qb::proto
