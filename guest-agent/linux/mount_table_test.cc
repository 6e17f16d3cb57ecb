#include "guest-agent/linux/mount_table.h"

#include <gtest/gtest.h>

namespace qb::agent {
namespace {

constexpr const char* kMountInfo =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
    "30 22 253:0 / /srv/data rw,relatime shared:5 master:2 - xfs /dev/mapper/vg-data rw\n"
    "31 22 0:40 / /run rw shared:7 - tmpfs tmpfs rw,size=100k\n"
    "40 30 8:17 / /srv/data/with\\040space rw - ext4 /dev/sdb1 rw\n"
    "41 22 253:0 /sub /mnt/bind rw - xfs /dev/mapper/vg-data rw\n"
    "42 31 0:41 / /run rw - tmpfs tmpfs rw\n";

TEST(MountTableTest, ParsesFieldsOptionalTagsAndEscapes) {
  auto table = ParseMountInfo(kMountInfo);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_EQ(table->size(), 7u);
  const auto& data = (*table)[2];
  EXPECT_EQ(data.mount_id, 30);
  EXPECT_EQ(data.parent_id, 22);
  EXPECT_EQ(data.dev_major, 253u);
  EXPECT_EQ(data.dev_minor, 0u);
  EXPECT_EQ(data.mount_point, "/srv/data");
  EXPECT_EQ(data.fs_type, "xfs");
  EXPECT_EQ(data.source, "/dev/mapper/vg-data");
  EXPECT_EQ(data.position, 2u);
  EXPECT_EQ((*table)[4].mount_point, "/srv/data/with space");
  EXPECT_EQ((*table)[5].root, "/sub");
}

TEST(MountTableTest, FindMountReturnsTheTopmostMount) {
  auto table = ParseMountInfo(kMountInfo);
  ASSERT_TRUE(table.ok());
  auto run = FindMount(*table, "/run/");
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->mount_id, 42);
  EXPECT_FALSE(FindMount(*table, "/srv").has_value());
  EXPECT_EQ(FindMount(*table, "/")->mount_id, 22);
}

TEST(MountTableTest, MalformedLinesAreErrorsNamingTheLine) {
  auto missing = ParseMountInfo("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n23 22 0:21 / /proc rw\n");
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(ParseMountInfo("x 1 8:1 / / rw - ext4 /dev/sda1 rw\n").ok());
  EXPECT_FALSE(ParseMountInfo("22 1 81 / / rw - ext4 /dev/sda1 rw\n").ok());
  EXPECT_FALSE(ParseMountInfo("22 1 8:1 / / rw - ext4\n").ok());
  EXPECT_TRUE(ParseMountInfo("").ok());
}

TEST(MountTableTest, ReadsTheRealTable) {
  auto table = ReadMountTable();
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_TRUE(FindMount(*table, "/").has_value());
}

}  // namespace
}  // namespace qb::agent
