#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace qb::proto {
namespace {

std::vector<std::uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::vector<std::vector<std::uint8_t>> DrainAll(FrameDecoder& d) {
  std::vector<std::vector<std::uint8_t>> out;
  while (auto p = d.Next()) out.push_back(*p);
  return out;
}

TEST(Frame, RoundTrip) {
  FrameDecoder d;
  d.Feed(EncodeFrame(Bytes("hello")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("hello"));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Frame, ByteAtATime) {
  auto f = EncodeFrame(Bytes("one"));
  auto g = EncodeFrame(Bytes("two"));
  f.insert(f.end(), g.begin(), g.end());
  FrameDecoder d;
  std::vector<std::vector<std::uint8_t>> got;
  for (auto b : f) {
    d.Feed(std::span<const std::uint8_t>(&b, 1));
    while (auto p = d.Next()) got.push_back(*p);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], Bytes("one"));
  EXPECT_EQ(got[1], Bytes("two"));
}

TEST(Frame, GarbagePrefixIsSkipped) {
  FrameDecoder d;
  auto garbage = Bytes("\xD1\x51garbage \xD1\x51\x42 more noise");
  d.Feed(garbage);
  d.Feed(EncodeFrame(Bytes("payload")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("payload"));
  EXPECT_GE(d.stats().dropped_bytes, garbage.size() - 3);
}

TEST(Frame, FlippedBitInPayloadIsDroppedAndNextFrameDelivered) {
  auto bad = EncodeFrame(Bytes("corrupt me"));
  bad[kFrameHeaderSize + 2] ^= 0x10;
  FrameDecoder d;
  d.Feed(bad);
  d.Feed(EncodeFrame(Bytes("good")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("good"));
  EXPECT_EQ(d.stats().bad_frames, 1u);
}

TEST(Frame, FlippedBitInLengthIsCaughtByHeaderCrc) {
  auto bad = EncodeFrame(Bytes("abc"));
  bad[9] ^= 0x01;  // length 3 -> 259: without a header CRC the reader would wait for 256 bytes
  FrameDecoder d;
  d.Feed(bad);
  d.Feed(EncodeFrame(Bytes("next")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("next"));
}

TEST(Frame, OversizeLengthIsRejectedBeforeAllocation) {
  FrameDecoder d(1024);
  std::vector<std::uint8_t> big(2000, 'x');
  auto f = EncodeFrame(big);
  // Only the header arrives: the length alone must be enough to reject it.
  d.Feed(std::span<const std::uint8_t>(f.data(), kFrameHeaderSize));
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_EQ(d.stats().oversize, 1u);
  EXPECT_LT(d.buffered(), kFrameHeaderSize);
  d.Feed(EncodeFrame(Bytes("small")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("small"));
}

TEST(Frame, TruncatedFrameFollowedByNewSessionDoesNotBlockIt) {
  // A dead writer left the first 30 bytes of a 500-byte frame; a new writer then sends a
  // complete frame. The reader must deliver the new one without waiting for 470 more bytes.
  std::vector<std::uint8_t> big(500, 'z');
  auto cut = EncodeFrame(big);
  cut.resize(30);
  FrameDecoder d;
  d.Feed(cut);
  d.Feed(EncodeFrame(Bytes("hello from new daemon")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("hello from new daemon"));
  EXPECT_EQ(d.stats().bad_frames, 1u);
}

TEST(Frame, UnknownVersionIsDropped) {
  auto f = EncodeFrame(Bytes("v2"));
  f[4] = 2;  // header CRC now fails too; either way it must not be delivered
  FrameDecoder d;
  d.Feed(f);
  EXPECT_TRUE(DrainAll(d).empty());
}

TEST(Frame, RandomNoiseNeverYieldsAFrameAndStaysBounded) {
  std::mt19937 rng(1234);
  FrameDecoder d(4096);
  std::vector<std::uint8_t> chunk(8192);
  for (int i = 0; i < 200; ++i) {
    for (auto& b : chunk) b = static_cast<std::uint8_t>(rng());
    d.Feed(chunk);
    EXPECT_FALSE(d.Next().has_value());
    EXPECT_LE(d.buffered(), 4096 + kFrameHeaderSize + chunk.size());
  }
  d.Feed(EncodeFrame(Bytes("after noise")));
  auto frames = DrainAll(d);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back(), Bytes("after noise"));
}

}  // namespace
}  // namespace qb::proto
