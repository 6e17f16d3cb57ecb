// The workload's on-disk record format and its verifier, shared by qb-recordwriter (in the
// guest) and qb-verify-records (on the host, against a snapshot of the data LUN).
//
// A record file is a sequence of fixed-size records, sequence numbers contiguous from 1, each
// appended and fsynced before the next is written. A consistent snapshot therefore holds a
// prefix of the records: every record whole and valid, nothing after the last one. Anything
// else (a short tail, a zero-filled or corrupt record, a gap) means the snapshot caught the file
// system mid-write.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time_limits.h"

namespace qb::vmtest {

// Record layout (little endian):
//    0  magic      "QBR1" (u32)
//    4  size       kRecordSize (u32)
//    8  sequence   1, 2, 3, ... (u64)
//   16  timestamp  CLOCK_REALTIME in ns when the record was built (u64)
//   24  payload    bytes derived from the sequence number
//  508  crc        CRC32C of bytes 0..507 (u32)
// 512 bytes: one sector, so a record never straddles a sector boundary on disk.
inline constexpr std::size_t kRecordSize = 512;
inline constexpr std::uint32_t kRecordMagic = 0x31524251;  // "QBR1"
inline constexpr char kRecordFileName[] = "records.bin";

// How often the writer reports its last acknowledged sequence on stdout (the serial console).
// Derived from the product's limits rather than invented: one thaw margin.
inline constexpr std::chrono::milliseconds kAckReportInterval = qb::limits::kThawMargin;

// Fills `out` (exactly kRecordSize bytes) with record `sequence` stamped `timestamp_ns`.
void EncodeRecord(std::uint64_t sequence, std::uint64_t timestamp_ns,
                  std::span<std::uint8_t, kRecordSize> out);

// What is wrong with one record, or kOk.
enum class RecordFault { kOk, kBadMagic, kBadSize, kBadCrc, kBadPayload, kWrongSequence, kZeroed };

// Checks record bytes against `expected_sequence`. Pure; never throws.
RecordFault CheckRecord(std::span<const std::uint8_t, kRecordSize> record,
                        std::uint64_t expected_sequence);

const char* RecordFaultName(RecordFault fault);

// The verdict on a whole record file.
struct RecordFileReport {
  std::uint64_t file_bytes = 0;
  std::uint64_t valid_records = 0;      // length of the valid prefix
  std::uint64_t last_sequence = 0;      // sequence of the last valid record (0: none)
  std::uint64_t last_timestamp_ns = 0;  // its timestamp
  std::uint64_t tail_bytes = 0;         // bytes after the last whole record (a torn append)
  std::vector<std::string> errors;      // empty when the file is a clean prefix
  bool ok() const { return errors.empty(); }
};

// Reads and checks every record of the file at `path`. Faults after the first are reported
// too (up to a few) so a corrupt middle is told apart from a torn tail. Fails (IoError) only
// when the file cannot be opened or read; a bad file is an ok Result with a non-ok report.
Result<RecordFileReport> VerifyRecordFile(const std::string& path);

// Same for bytes already in memory (used by tests).
RecordFileReport VerifyRecordBytes(std::span<const std::uint8_t> bytes);

// {"file":..., "records":N, "last_sequence":N, ...} on one line.
std::string ReportToJson(const std::string& path, const RecordFileReport& report);

}  // namespace qb::vmtest
