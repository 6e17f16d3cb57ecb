#include "tests/vm/records.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "protocol/crc32c.h"

namespace qb::vmtest {
namespace {

constexpr std::size_t kMagicOffset = 0;
constexpr std::size_t kSizeOffset = 4;
constexpr std::size_t kSequenceOffset = 8;
constexpr std::size_t kTimestampOffset = 16;
constexpr std::size_t kPayloadOffset = 24;
constexpr std::size_t kCrcOffset = kRecordSize - 4;
constexpr std::size_t kMaxReportedErrors = 8;

template <typename T>
void Store(std::uint8_t* at, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) at[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

template <typename T>
T Load(const std::uint8_t* at) {
  T value = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(at[i]) << (8 * i);
  return value;
}

// Payload byte i of record `sequence`: cheap, different per record and per position, so a
// record written at the wrong offset or mixed with another is caught even if its CRC matched.
std::uint8_t PayloadByte(std::uint64_t sequence, std::size_t i) {
  return static_cast<std::uint8_t>((sequence * 131u + i * 7u) ^ (sequence >> 8));
}

}  // namespace

void EncodeRecord(std::uint64_t sequence, std::uint64_t timestamp_ns,
                  std::span<std::uint8_t, kRecordSize> out) {
  std::uint8_t* p = out.data();
  Store<std::uint32_t>(p + kMagicOffset, kRecordMagic);
  Store<std::uint32_t>(p + kSizeOffset, static_cast<std::uint32_t>(kRecordSize));
  Store<std::uint64_t>(p + kSequenceOffset, sequence);
  Store<std::uint64_t>(p + kTimestampOffset, timestamp_ns);
  for (std::size_t i = kPayloadOffset; i < kCrcOffset; ++i) p[i] = PayloadByte(sequence, i);
  Store<std::uint32_t>(p + kCrcOffset, qb::proto::Crc32c(out.first(kCrcOffset)));
}

RecordFault CheckRecord(std::span<const std::uint8_t, kRecordSize> record,
                        std::uint64_t expected_sequence) {
  const std::uint8_t* p = record.data();
  if (std::all_of(record.begin(), record.end(), [](std::uint8_t b) { return b == 0; })) {
    return RecordFault::kZeroed;
  }
  if (Load<std::uint32_t>(p + kMagicOffset) != kRecordMagic) return RecordFault::kBadMagic;
  if (Load<std::uint32_t>(p + kSizeOffset) != kRecordSize) return RecordFault::kBadSize;
  if (Load<std::uint32_t>(p + kCrcOffset) != qb::proto::Crc32c(record.first(kCrcOffset))) {
    return RecordFault::kBadCrc;
  }
  const auto sequence = Load<std::uint64_t>(p + kSequenceOffset);
  for (std::size_t i = kPayloadOffset; i < kCrcOffset; ++i) {
    if (p[i] != PayloadByte(sequence, i)) return RecordFault::kBadPayload;
  }
  if (sequence != expected_sequence) return RecordFault::kWrongSequence;
  return RecordFault::kOk;
}

const char* RecordFaultName(RecordFault fault) {
  switch (fault) {
    case RecordFault::kOk:
      return "ok";
    case RecordFault::kBadMagic:
      return "bad magic";
    case RecordFault::kBadSize:
      return "bad size field";
    case RecordFault::kBadCrc:
      return "bad crc";
    case RecordFault::kBadPayload:
      return "bad payload";
    case RecordFault::kWrongSequence:
      return "wrong sequence";
    case RecordFault::kZeroed:
      return "zero-filled";
  }
  return "unknown";
}

RecordFileReport VerifyRecordBytes(std::span<const std::uint8_t> bytes) {
  RecordFileReport report;
  report.file_bytes = bytes.size();
  const std::size_t whole = bytes.size() / kRecordSize;
  report.tail_bytes = bytes.size() % kRecordSize;
  bool in_prefix = true;
  for (std::size_t i = 0; i < whole; ++i) {
    const std::uint64_t expected = i + 1;
    const auto record = bytes.subspan(i * kRecordSize).first<kRecordSize>();
    const RecordFault fault = CheckRecord(record, expected);
    if (fault == RecordFault::kOk) {
      if (in_prefix) {
        report.valid_records = expected;
        report.last_sequence = expected;
        report.last_timestamp_ns = Load<std::uint64_t>(record.data() + kTimestampOffset);
      }
      continue;
    }
    in_prefix = false;
    if (report.errors.size() < kMaxReportedErrors) {
      report.errors.push_back("record " + std::to_string(expected) + " at offset " +
                              std::to_string(i * kRecordSize) + ": " + RecordFaultName(fault));
    } else if (report.errors.size() == kMaxReportedErrors) {
      report.errors.push_back("more faults not listed");
    }
  }
  if (report.tail_bytes != 0) {
    report.errors.push_back("torn tail: " + std::to_string(report.tail_bytes) +
                            " bytes after the last whole record");
  }
  return report;
}

Result<RecordFileReport> VerifyRecordFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Code::kIoError, "open " + path + ": " + std::strerror(errno));
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  if (in.bad()) return Error(Code::kIoError, "read " + path + ": " + std::strerror(errno));
  return VerifyRecordBytes(bytes);
}

}  // namespace qb::vmtest
