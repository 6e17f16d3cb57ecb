#include "tests/vm/records.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace qb::vmtest {
namespace {

std::vector<std::uint8_t> RecordsFrom(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint8_t> bytes;
  std::array<std::uint8_t, kRecordSize> record{};
  for (std::uint64_t s = first; s <= last; ++s) {
    EncodeRecord(s, 1000 + s, record);
    bytes.insert(bytes.end(), record.begin(), record.end());
  }
  return bytes;
}

TEST(RecordsTest, EncodedRecordChecksOutOnlyAtItsSequence) {
  std::array<std::uint8_t, kRecordSize> record{};
  EncodeRecord(7, 42, record);
  EXPECT_EQ(CheckRecord(record, 7), RecordFault::kOk);
  EXPECT_EQ(CheckRecord(record, 8), RecordFault::kWrongSequence);
}

TEST(RecordsTest, EveryFlippedByteIsCaught) {
  std::array<std::uint8_t, kRecordSize> record{};
  EncodeRecord(3, 99, record);
  for (std::size_t i = 0; i < kRecordSize; ++i) {
    auto copy = record;
    copy[i] ^= 0x01;
    EXPECT_NE(CheckRecord(copy, 3), RecordFault::kOk) << "byte " << i;
  }
}

TEST(RecordsTest, ZeroFilledRecordIsNamed) {
  std::array<std::uint8_t, kRecordSize> record{};
  EXPECT_EQ(CheckRecord(record, 1), RecordFault::kZeroed);
}

TEST(RecordsTest, CleanPrefixIsValid) {
  const auto bytes = RecordsFrom(1, 50);
  const RecordFileReport report = VerifyRecordBytes(bytes);
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.valid_records, 50u);
  EXPECT_EQ(report.last_sequence, 50u);
  EXPECT_EQ(report.last_timestamp_ns, 1050u);
  EXPECT_EQ(report.tail_bytes, 0u);
}

TEST(RecordsTest, EmptyFileIsAValidEmptyPrefix) {
  const RecordFileReport report = VerifyRecordBytes({});
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.last_sequence, 0u);
}

TEST(RecordsTest, TornTailIsInvalidButPrefixCounted) {
  auto bytes = RecordsFrom(1, 10);
  bytes.resize(bytes.size() - 100);
  const RecordFileReport report = VerifyRecordBytes(bytes);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.last_sequence, 9u);
  EXPECT_EQ(report.tail_bytes, kRecordSize - 100);
}

TEST(RecordsTest, ZeroedTailAfterCrashIsInvalid) {
  auto bytes = RecordsFrom(1, 10);
  bytes.resize(bytes.size() + 3 * kRecordSize, 0);
  const RecordFileReport report = VerifyRecordBytes(bytes);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.last_sequence, 10u);
  ASSERT_FALSE(report.errors.empty());
  EXPECT_NE(report.errors.front().find("zero-filled"), std::string::npos);
}

TEST(RecordsTest, GapInSequenceIsInvalid) {
  auto bytes = RecordsFrom(1, 5);
  const auto later = RecordsFrom(7, 9);
  bytes.insert(bytes.end(), later.begin(), later.end());
  const RecordFileReport report = VerifyRecordBytes(bytes);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.last_sequence, 5u);
}

TEST(RecordsTest, CorruptMiddleStopsThePrefix) {
  auto bytes = RecordsFrom(1, 20);
  bytes[5 * kRecordSize + 100] ^= 0xFF;
  const RecordFileReport report = VerifyRecordBytes(bytes);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.last_sequence, 5u);
  EXPECT_EQ(report.errors.size(), 1u);
}

TEST(RecordsTest, FileRoundTripAndJson) {
  const std::string path = ::testing::TempDir() + "/records_test.bin";
  {
    const auto bytes = RecordsFrom(1, 3);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  auto report = VerifyRecordFile(path);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->last_sequence, 3u);
  const std::string json = ReportToJson(path, *report);
  EXPECT_NE(json.find("\"last_sequence\":3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ok\":true"), std::string::npos) << json;
  std::remove(path.c_str());
}

TEST(RecordsTest, MissingFileIsAnIoError) {
  auto report = VerifyRecordFile("/nonexistent/records.bin");
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kIoError);
}

}  // namespace
}  // namespace qb::vmtest
