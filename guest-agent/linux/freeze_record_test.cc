#include "guest-agent/linux/freeze_record.h"

#include <gtest/gtest.h>

#include <fstream>

#include "guest-agent/linux/testing/loop_fs.h"

namespace qb::agent {
namespace {

TEST(FreezeRecordTest, RoundTripsAndRemoves) {
  testing::TempDir dir;
  FreezeRecordFile file(dir.path() + "/run");
  auto none = file.Read();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  FreezeRecord record{"job-7", {"/srv/a", "/srv/with\nnewline", "/srv/back\\slash"}, {}, {}};
  ASSERT_TRUE(file.Write(record).ok());
  auto read = file.Read();
  ASSERT_TRUE(read.ok());
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, record);
  ASSERT_TRUE(file.Remove().ok());
  EXPECT_FALSE(file.Read()->has_value());
  EXPECT_TRUE(file.Remove().ok());
}

TEST(FreezeRecordTest, ASecondWriteReplacesTheFirstWhole) {
  testing::TempDir dir;
  FreezeRecordFile file(dir.path() + "/run");
  ASSERT_TRUE(file.Write(FreezeRecord{"job-long", {"/srv/a", "/srv/b", "/srv/c"}, {}, {}}).ok());
  FreezeRecord shorter{"job-2", {"/x"}, {}, {}};
  ASSERT_TRUE(file.Write(shorter).ok());
  auto read = file.Read();
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, shorter);
}

TEST(FreezeRecordTest, AnUncreatableRunDirIsAnError) {
  testing::TempDir dir;
  FreezeRecordFile file(dir.path() + "/missing/parent/run");
  EXPECT_FALSE(file.Write(FreezeRecord{"job-1", {"/srv/a"}, {}, {}}).ok());
}

TEST(FreezeRecordTest, RecordsWhichFreezeHooksStartedAndFinished) {
  testing::TempDir dir;
  FreezeRecordFile file(dir.path() + "/run");
  FreezeRecord record;
  record.job_id = "job-h";
  record.hooks_started = {"10-a", "20-with\nnewline"};
  record.hooks_done = {"10-a"};
  ASSERT_TRUE(file.Write(record).ok());
  auto read = file.Read();
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, record);
}

TEST(FreezeRecordTest, TheFirstRecordVersionIsStillRead) {
  testing::TempDir dir;
  FreezeRecordFile file(dir.path());
  std::ofstream(file.path()) << "quiesce-agent freeze record 1\njob old\nmount /srv/a\n";
  auto read = file.Read();
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->job_id, "old");
  EXPECT_EQ((*read)->mount_points, std::vector<std::string>{"/srv/a"});
  EXPECT_TRUE((*read)->hooks_started.empty());
}

TEST(FreezeRecordTest, GarbageIsAnError) {
  testing::TempDir dir;
  FreezeRecordFile file(dir.path());
  std::ofstream(file.path()) << "something else\n";
  EXPECT_EQ(file.Read().status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace qb::agent
