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

FrameDecoder::FrameDecoder(std::size_t max_payload)
    : max_payload_(max_payload), max_candidates_(max_payload / kFrameHeaderSize + 4096) {}

void FrameDecoder::Feed(std::span<const std::uint8_t> bytes) {
  Compact();
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  stats_.bytes_fed += bytes.size();
}

void FrameDecoder::Reset() {
  buf_.clear();
  base_ = start_ = scan_ = crc_pos_ = 0;
  crc_ = 0;
  candidates_.clear();
  payload_starts_.clear();
  payload_ends_ = {};
  good_.clear();
}

void FrameDecoder::Compact() {
  std::uint64_t consumed = start_ - base_;
  std::uint64_t kept = end() - start_;
  // Moving `kept` bytes is paid for by the `consumed` bytes it frees: bytes moved never exceed
  // bytes fed, however the stream is cut.
  if (consumed == 0 || consumed < kept) return;
  buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(consumed));
  base_ = start_;
  stats_.bytes_moved += kept;
}

FrameDecoder::Candidate* FrameDecoder::Find(std::uint64_t pos) {
  auto it = std::lower_bound(candidates_.begin(), candidates_.end(), pos,
                             [](const Candidate& c, std::uint64_t p) { return c.pos < p; });
  return it != candidates_.end() && it->pos == pos ? &*it : nullptr;
}

void FrameDecoder::ScanHeaders() {
  scan_ = std::max(scan_, start_);
  if (end() < kFrameHeaderSize) return;
  const std::uint64_t last = end() - kFrameHeaderSize;  // the last offset with a whole header
  while (scan_ <= last) {
    const std::uint8_t* from = At(scan_);
    const void* hit = std::memchr(from, kFrameMagic[0], static_cast<std::size_t>(last - scan_ + 1));
    if (hit == nullptr) {
      scan_ = last + 1;
      break;
    }
    std::uint64_t pos =
        scan_ + static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(hit) - from);
    scan_ = pos + 1;
    const std::uint8_t* h = At(pos);
    if (std::memcmp(h, kFrameMagic.data(), kFrameMagic.size()) != 0) continue;

    // A bad header is counted once, here, and never stored: it cannot start a frame.
    stats_.bytes_hashed += 16;
    const std::uint32_t length = GetU32(h + 8);
    if (GetU32(h + 16) != Crc32c(std::span<const std::uint8_t>(h, 16)) || h[4] != kFrameVersion) {
      ++stats_.bad_frames;
      continue;
    }
    if (length > max_payload_) {
      ++stats_.oversize;
      ++stats_.bad_frames;
      continue;
    }
    if (candidates_.size() >= max_candidates_) {
      // Only overlapping headers, which no honest writer sends, can get here.
      ++stats_.bad_frames;
      continue;
    }
    Candidate c;
    c.pos = pos;
    c.end = pos + kFrameHeaderSize + length;
    c.payload_crc = GetU32(h + 12);
    // Its payload starts after crc_pos_: the running CRC only ever advances to an end() whose
    // every whole header was scanned first, and this one was not whole then.
    payload_starts_.push_back(pos);
    payload_ends_.emplace(c.end, pos);
    candidates_.push_back(c);
  }
}

void FrameDecoder::Resolve(Candidate& c) {
  ++stats_.crc_derivations;
  std::uint32_t actual = Crc32cOfSuffix(c.crc_at_payload, crc_, c.end - c.pos - kFrameHeaderSize);
  c.verdict = actual == c.payload_crc ? Candidate::Verdict::kGood : Candidate::Verdict::kBadPayload;
  if (c.verdict == Candidate::Verdict::kGood) good_.insert(c.pos);
}

void FrameDecoder::AdvanceCrc() {
  const std::uint64_t stop_at = end();
  while (crc_pos_ < stop_at) {
    std::uint64_t next = stop_at;
    if (!payload_starts_.empty()) next = std::min(next, payload_starts_.front() + kFrameHeaderSize);
    if (!payload_ends_.empty()) next = std::min(next, payload_ends_.top().first);
    if (next > crc_pos_) {
      crc_ = Crc32cExtend(crc_, std::span<const std::uint8_t>(At(crc_pos_), next - crc_pos_));
      stats_.bytes_hashed += next - crc_pos_;
      crc_pos_ = next;
    }
    // Starts before ends: an empty payload begins and ends at the same offset.
    while (!payload_starts_.empty() && payload_starts_.front() + kFrameHeaderSize == crc_pos_) {
      if (Candidate* c = Find(payload_starts_.front())) c->crc_at_payload = crc_;
      payload_starts_.pop_front();
    }
    while (!payload_ends_.empty() && payload_ends_.top().first == crc_pos_) {
      // A candidate already dropped (inside a delivered frame, or before a newer one) is gone.
      if (Candidate* c = Find(payload_ends_.top().second)) Resolve(*c);
      payload_ends_.pop();
    }
  }
}

void FrameDecoder::DropBefore(std::uint64_t pos) {
  if (pos <= start_) return;
  start_ = pos;
  while (!candidates_.empty() && candidates_.front().pos < pos) candidates_.pop_front();
  good_.erase(good_.begin(), good_.lower_bound(pos));
}

std::optional<std::vector<std::uint8_t>> FrameDecoder::Next() {
  ScanHeaders();
  AdvanceCrc();
  for (;;) {
    if (candidates_.empty()) {
      // Nothing before scan_ can begin a frame; the bytes after it may still hold a header.
      if (scan_ > start_) {
        stats_.dropped_bytes += scan_ - start_;
        DropBefore(scan_);
      }
      return std::nullopt;
    }
    Candidate& front = candidates_.front();
    stats_.dropped_bytes += front.pos - start_;
    start_ = front.pos;
    switch (front.verdict) {
      case Candidate::Verdict::kBadPayload:
        ++stats_.bad_frames;
        ++stats_.dropped_bytes;
        DropBefore(front.pos + 1);
        continue;
      case Candidate::Verdict::kGood: {
        const std::uint8_t* payload = At(front.pos + kFrameHeaderSize);
        std::vector<std::uint8_t> out(payload,
                                      payload + (front.end - front.pos - kFrameHeaderSize));
        ++stats_.frames;
        DropBefore(front.end);
        return out;
      }
      case Candidate::Verdict::kPending: {
        // Incomplete. A whole valid frame inside the bytes it claims means this one was cut
        // short by a dead writer: skip to the newer frame. (Any complete candidate after an
        // incomplete one lies inside it.)
        auto newer = good_.upper_bound(front.pos);
        if (newer == good_.end()) return std::nullopt;
        ++stats_.bad_frames;
        stats_.dropped_bytes += *newer - front.pos;
        DropBefore(*newer);
        continue;
      }
    }
  }
}

}  // namespace qb::proto
