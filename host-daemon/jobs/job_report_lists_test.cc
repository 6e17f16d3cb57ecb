#include "host-daemon/jobs/job_report_lists.h"

#include <gtest/gtest.h>

namespace qb::jobs {
namespace {

proto::WriterResult Hook(std::string name, std::string phase, bool ok = true) {
  proto::WriterResult w;
  w.name = std::move(name);
  w.ok = ok;
  w.state = ok ? "exit 0" : "exit 1";
  w.phase = std::move(phase);
  return w;
}

// Issue 12 item 9: an older Linux agent repeats its freeze results in Thawed. Each hook
// appears once per phase, and the phase is typed.
TEST(JobReportLists, FreezeResultsRepeatedInThawedAppearOncePerPhase) {
  proto::JobReport report;
  AddWriterResults(report, "vm1", {Hook("10-db", "freeze"), Hook("20-app", "freeze")},
                   proto::WriterPhase::kFreeze);
  AddWriterResults(report, "vm1",
                   {Hook("10-db", "freeze"), Hook("20-app", "freeze"), Hook("20-app", "thaw"),
                    Hook("10-db", "thaw")},
                   proto::WriterPhase::kThaw);
  ASSERT_EQ(report.writer_details.size(), 4u);
  EXPECT_EQ(report.writers.size(), 4u);
  EXPECT_EQ(report.writers_truncated, 0u);
  EXPECT_EQ(report.writer_details[0].phase, proto::WriterPhase::kFreeze);
  EXPECT_EQ(report.writer_details[2].phase, proto::WriterPhase::kThaw);
  EXPECT_EQ(report.writers[2], "vm1: 20-app [thaw]: exit 0");
  // Same hook name on another VM of a group job is another entry.
  AddWriterResults(report, "vm2", {Hook("10-db", "freeze")}, proto::WriterPhase::kFreeze);
  EXPECT_EQ(report.writer_details.size(), 5u);
}

TEST(JobReportLists, APhaseTheAgentDidNotNameComesFromTheMessage) {
  proto::JobReport report;
  AddWriterResults(report, "vm1", {Hook("SqlServerWriter", "")}, proto::WriterPhase::kFreeze);
  AddWriterResults(report, "vm1", {Hook("SqlServerWriter", "")}, proto::WriterPhase::kThaw);
  ASSERT_EQ(report.writer_details.size(), 2u);
  EXPECT_EQ(report.writer_details[1].phase, proto::WriterPhase::kThaw);
}

// Issue 11 item 2: a guest reporting ~2,100 writers in Frozen and again in Thawed.
TEST(JobReportLists, WritersAreBoundedAndTheRestCounted) {
  std::vector<proto::WriterResult> freeze, thaw;
  for (int i = 0; i < 2100; ++i) {
    freeze.push_back(Hook("hook-" + std::to_string(i), "freeze"));
    thaw.push_back(Hook("hook-" + std::to_string(i), "thaw"));
  }
  proto::JobReport report;
  AddWriterResults(report, "vm1", freeze, proto::WriterPhase::kFreeze);
  AddWriterResults(report, "vm1", thaw, proto::WriterPhase::kThaw);
  EXPECT_EQ(report.writer_details.size(), proto::kMaxJobWriters);
  EXPECT_EQ(report.writers.size(), proto::kMaxJobWriters);
  EXPECT_EQ(report.writers_truncated, 4200u - proto::kMaxJobWriters);
}

TEST(JobReportLists, LongWriterTextsAreBoundedInBytes) {
  std::vector<proto::WriterResult> big;
  for (int i = 0; i < 200; ++i)
    big.push_back(Hook(std::to_string(i) + std::string(32 * 1024, 'a'), "freeze"));
  proto::JobReport report;
  AddWriterResults(report, "vm1", big, proto::WriterPhase::kFreeze);
  std::size_t bytes = 0;
  for (const auto& w : report.writer_details) {
    EXPECT_LE(w.name.size(), proto::kMaxGuestFieldBytes);
    bytes += w.name.size() + w.state.size() + w.vm.size();
  }
  EXPECT_LE(2 * bytes, proto::kMaxJobWriterBytes);
  EXPECT_GT(report.writers_truncated, 0u);
  EXPECT_EQ(report.writer_details.size() + report.writers_truncated, 200u);
}

TEST(JobReportLists, NotCoveredIsBounded) {
  std::vector<std::string> volumes;
  for (int i = 0; i < 5000; ++i) volumes.push_back("/mnt/v" + std::to_string(i));
  proto::JobReport report;
  AddNotCovered(report, "vm1", volumes);
  EXPECT_EQ(report.not_covered.size(), proto::kMaxJobNotCovered);
  EXPECT_EQ(report.not_covered_truncated, 5000u - proto::kMaxJobNotCovered);
  EXPECT_EQ(report.not_covered[0], "vm1:/mnt/v0");
}

TEST(JobReportLists, CatalogJsonRoundTripsAndReadsTheOldFormat) {
  proto::JobReport report;
  AddWriterResults(report, "vm1", {Hook("10-db", "freeze"), Hook("10-db\"\\x", "thaw", false)},
                   proto::WriterPhase::kFreeze);
  report.writers_truncated = 12;
  proto::JobReport back;
  WritersFromCatalogJson(WritersToCatalogJson(report), back);
  EXPECT_EQ(back.writer_details, report.writer_details);
  EXPECT_EQ(back.writers, report.writers);
  EXPECT_EQ(back.writers_truncated, 12u);

  proto::JobReport old;
  WritersFromCatalogJson(R"(["vm1: 10-db: exit 0","vm1: 10-db: exit 0"])", old);
  EXPECT_EQ(old.writers.size(), 2u);
  EXPECT_TRUE(old.writer_details.empty());
  proto::JobReport junk;
  WritersFromCatalogJson("{not json", junk);
  WritersFromCatalogJson("", junk);
  EXPECT_TRUE(junk.writers.empty());
}

}  // namespace
}  // namespace qb::jobs
