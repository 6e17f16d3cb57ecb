#include "protocol/frame.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "protocol/crc32c.h"
#include "protocol/testing/reference_frame_decoder.h"

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

// --- Work bounded by input --------------------------------------------------------------------

// A header with a correct header CRC claiming `length` bytes with payload CRC `crc`.
std::vector<std::uint8_t> Header(std::uint32_t length, std::uint32_t crc) {
  auto f = EncodeFrame({});
  auto put = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) f[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  put(8, length);
  put(12, crc);
  put(16, Crc32c(std::span<const std::uint8_t>(f.data(), 16)));
  return f;
}

void ExpectWithinWorkBound(const FrameDecoder& d) {
  const auto& st = d.stats();
  EXPECT_LE(st.work(), FrameDecoder::kWorkPerByteFed * st.bytes_fed + FrameDecoder::kWorkSlack)
      << "fed " << st.bytes_fed << " hashed " << st.bytes_hashed << " moved " << st.bytes_moved
      << " derivations " << st.crc_derivations;
}

// One header claiming ~1 MiB, then `headers` headers (correct header CRCs) whose claimed
// payloads all end `tail` bytes after the last of them, then `after` more bytes. Fed in 4 KiB
// chunks up to the common end, then one byte at a time: a reader that re-checks every complete
// candidate on each Next() hashes ~headers x tail bytes per byte fed.
struct NestedAttack {
  std::vector<std::uint8_t> stream;
  std::size_t common_end = 0;
};
NestedAttack MakeNestedAttack(std::size_t headers, std::size_t tail, std::size_t after) {
  NestedAttack a;
  a.stream = Header(kDefaultMaxPayload, 0x12345678);
  a.common_end = kFrameHeaderSize * (headers + 1) + tail;
  for (std::size_t i = 0; i < headers; ++i) {
    auto h = Header(static_cast<std::uint32_t>(a.common_end - a.stream.size() - kFrameHeaderSize),
                    0xBADC0DE);
    a.stream.insert(a.stream.end(), h.begin(), h.end());
  }
  a.stream.resize(a.common_end + after, 0xAB);
  return a;
}
template <typename Decoder>
void FeedAttack(const NestedAttack& a, Decoder& d) {
  std::span<const std::uint8_t> all(a.stream);
  for (std::size_t off = 0; off < a.common_end; off += 4096) {
    d.Feed(all.subspan(off, std::min<std::size_t>(4096, a.common_end - off)));
    EXPECT_FALSE(d.Next().has_value());
  }
  for (std::size_t off = a.common_end; off < all.size(); ++off) {
    d.Feed(all.subspan(off, 1));
    EXPECT_FALSE(d.Next().has_value());
  }
}

TEST(FrameWork, NestedHeadersEndingTogetherThenByteAtATimeStayLinear) {
  const std::size_t kHeaders = 3000;
  auto attack = MakeNestedAttack(kHeaders, 64 * 1024, 4096);
  FrameDecoder d;
  FeedAttack(attack, d);
  EXPECT_EQ(d.stats().crc_derivations, kHeaders);  // each nested payload checked once
  ExpectWithinWorkBound(d);
  // The outer frame is still pending; a complete new frame inside it is still found.
  d.Feed(EncodeFrame(Bytes("after the attack")));
  auto frames = DrainAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], Bytes("after the attack"));
  ExpectWithinWorkBound(d);
}

// The counter tells a quadratic reader from a linear one: the reader before the bound, on a
// small version of the attack, does far more work than the bound allows.
TEST(FrameWork, TheBoundCatchesTheQuadraticReference) {
  auto attack = MakeNestedAttack(100, 8 * 1024, 100);
  testing::ReferenceFrameDecoder reference(kDefaultMaxPayload);
  FeedAttack(attack, reference);
  const std::uint64_t bound =
      FrameDecoder::kWorkPerByteFed * attack.stream.size() + FrameDecoder::kWorkSlack;
  EXPECT_GT(reference.work(), 10 * bound);
  FrameDecoder d;
  FeedAttack(attack, d);
  EXPECT_LE(d.stats().work(), bound);
  std::printf("attack of %zu bytes: reference work %llu, bounded reader %llu, bound %llu\n",
              attack.stream.size(), static_cast<unsigned long long>(reference.work()),
              static_cast<unsigned long long>(d.stats().work()),
              static_cast<unsigned long long>(bound));
}

// Behaviour unchanged: on streams of frames, cut frames, nested headers, corruption and noise,
// fed in random chunks, the bounded reader delivers exactly what the reference delivers.
TEST(Frame, AgreesWithTheReferenceReaderFrameForFrame) {
  std::mt19937 rng(99);
  for (int round = 0; round < 300; ++round) {
    const std::size_t max_payload = 1 + rng() % 3000;
    std::vector<std::uint8_t> stream;
    while (stream.size() < 16 * 1024) {
      std::vector<std::uint8_t> p(rng() % (max_payload + 16), static_cast<std::uint8_t>(rng()));
      auto f = EncodeFrame(p);
      switch (rng() % 6) {
        case 0:  // cut short
          f.resize(rng() % f.size());
          break;
        case 1:  // one flipped bit anywhere
          f[rng() % f.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 2: {  // a valid frame nested inside the bytes a bigger header claims
          auto inner = EncodeFrame(Bytes("inner"));
          auto outer = Header(static_cast<std::uint32_t>(rng() % max_payload + 1), rng());
          f = outer;
          f.insert(f.end(), inner.begin(), inner.end());
          break;
        }
        case 3:  // noise holding magic bytes
          f.assign(rng() % 64, 0xD1);
          for (auto& b : f)
            if (rng() % 2) b = static_cast<std::uint8_t>(rng());
          break;
        default:
          break;
      }
      stream.insert(stream.end(), f.begin(), f.end());
    }
    FrameDecoder d(max_payload);
    testing::ReferenceFrameDecoder reference(max_payload);
    std::vector<std::vector<std::uint8_t>> got, want;
    for (std::size_t off = 0; off < stream.size();) {
      std::size_t n = std::min<std::size_t>(1 + rng() % 300, stream.size() - off);
      auto chunk = std::span<const std::uint8_t>(stream).subspan(off, n);
      off += n;
      d.Feed(chunk);
      reference.Feed(chunk);
      while (auto p = d.Next()) got.push_back(*p);
      while (auto p = reference.Next()) want.push_back(*p);
    }
    ASSERT_EQ(got, want) << "round " << round;
    ExpectWithinWorkBound(d);
  }
}

// Overlapping complete frames with bad CRCs: each rejection resumes one byte on, at the next
// header, whose payload must not be hashed again.
TEST(FrameWork, OverlappingCompleteBadFramesStayLinear) {
  std::vector<std::uint8_t> stream;
  const std::size_t kHeaders = 4000, kPayload = 200 * 1024;
  const std::size_t common_end = kFrameHeaderSize * kHeaders + kPayload;
  for (std::size_t i = 0; i < kHeaders; ++i) {
    auto h = Header(static_cast<std::uint32_t>(common_end - stream.size() - kFrameHeaderSize), 1);
    stream.insert(stream.end(), h.begin(), h.end());
  }
  stream.resize(common_end, 0);
  FrameDecoder d;
  d.Feed(stream);
  EXPECT_FALSE(d.Next().has_value());
  EXPECT_EQ(d.stats().bad_frames, kHeaders);
  ExpectWithinWorkBound(d);
}

// Generated streams of valid frames, cut frames, nested headers and corruption, fed in random
// chunks: the bound holds for all of them (random bytes alone never contain valid headers).
TEST(FrameWork, GeneratedNestedHeaderStreamsStayWithinTheBound) {
  std::mt19937 rng(2026);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::uint8_t> stream;
    const std::size_t max_payload = 1 + rng() % (256 * 1024);
    while (stream.size() < 600 * 1024) {
      switch (rng() % 4) {
        case 0: {  // a valid frame
          std::vector<std::uint8_t> p(rng() % 2048, static_cast<std::uint8_t>(rng()));
          AppendFrame(p, stream);
          break;
        }
        case 1: {  // a header claiming a random length, possibly over the limit
          auto h = Header(static_cast<std::uint32_t>(rng() % (max_payload + 64)), rng());
          stream.insert(stream.end(), h.begin(), h.end());
          break;
        }
        case 2: {  // a run of headers ending together
          std::size_t n = 1 + rng() % 500, tail = rng() % 8192;
          std::size_t end = stream.size() + kFrameHeaderSize * n + tail;
          for (std::size_t i = 0; i < n; ++i) {
            auto h =
                Header(static_cast<std::uint32_t>(end - stream.size() - kFrameHeaderSize), rng());
            stream.insert(stream.end(), h.begin(), h.end());
          }
          break;
        }
        default:  // noise
          for (std::size_t i = rng() % 4096; i > 0; --i)
            stream.push_back(static_cast<std::uint8_t>(rng()));
      }
    }
    FrameDecoder d(max_payload);
    for (std::size_t off = 0; off < stream.size();) {
      std::size_t n = rng() % 3 == 0 ? 1 : 1 + rng() % 8192;
      n = std::min(n, stream.size() - off);
      d.Feed(std::span<const std::uint8_t>(stream).subspan(off, n));
      off += n;
      while (d.Next()) {
      }
    }
    ExpectWithinWorkBound(d);
  }
}

}  // namespace
}  // namespace qb::proto
