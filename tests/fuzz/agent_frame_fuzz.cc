// libFuzzer target: arbitrary bytes through the frame decoder and every message decoder, the
// path every byte a guest sends takes. Must never crash, leak, or allocate past the limits, and
// the frame reader's work must stay linear in the bytes fed: an input over the bound aborts, so
// a quadratic input is a finding like a crash (CI runs it with -max_len large enough to hold
// thousands of nested headers).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "protocol/codec.h"
#include "protocol/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> input(data, size);
  qb::proto::CodecLimits limits;
  limits.max_payload = 64 * 1024;

  // 1. As a stream, in uneven chunks (the first byte picks the chunk size).
  qb::proto::FrameDecoder decoder(limits.max_payload);
  std::size_t chunk = size > 0 ? (data[0] % 61) + 1 : 1;
  for (std::size_t off = 0; off < size; off += chunk) {
    decoder.Feed(input.subspan(off, std::min(chunk, size - off)));
    while (auto payload = decoder.Next()) {
      (void)qb::proto::DecodeAgent(*payload, limits);
      (void)qb::proto::DecodeControlRequest(*payload, limits);
      (void)qb::proto::DecodeControlReply(*payload, limits);
    }
    const auto& stats = decoder.stats();
    if (stats.work() > qb::proto::FrameDecoder::kWorkPerByteFed * stats.bytes_fed +
                           qb::proto::FrameDecoder::kWorkSlack) {
      std::fprintf(stderr, "frame reader work %llu for %llu bytes fed: over the bound\n",
                   static_cast<unsigned long long>(stats.work()),
                   static_cast<unsigned long long>(stats.bytes_fed));
      std::abort();
    }
  }
  // 2. As a bare payload (skipping the frame CRC, so the fuzzer reaches the decoders quickly).
  (void)qb::proto::DecodeAgent(input, limits);
  (void)qb::proto::DecodeControlRequest(input, limits);
  return 0;
}
