#include "host-daemon/link/reply_check.h"

#include <gtest/gtest.h>

namespace qb::link {
namespace {

proto::Freeze FreezeOf(std::vector<std::string> volumes) {
  proto::Freeze f;
  f.job_id = "job-1";
  f.volumes = std::move(volumes);
  f.lease_ms = 5000;
  return f;
}

proto::AgentMessage Reply(proto::AgentBody body) {
  return proto::AgentMessage{1, 7, std::move(body)};
}

TEST(ReplyCheck, FrozenMustAnswerTheJobAndItsVolumes) {
  auto request = FreezeOf({"/a", "/b"});
  proto::Frozen ok{"job-1", {"/a"}, {{"/b", "not freezable"}}, {}, 0, 5000, 0, 0};
  EXPECT_TRUE(CheckFrozen(Reply(ok), request).ok());

  auto other_job = ok;
  other_job.job_id = "job-2";
  EXPECT_EQ(CheckFrozen(Reply(other_job), request).status().code(), Code::kProtocolError);

  auto extra = ok;
  extra.frozen_volumes.push_back("/etc");
  EXPECT_EQ(CheckFrozen(Reply(extra), request).status().code(), Code::kProtocolError);

  auto missing = ok;
  missing.skipped_volumes.clear();
  EXPECT_EQ(CheckFrozen(Reply(missing), request).status().code(), Code::kProtocolError);

  auto twice = ok;
  twice.frozen_volumes = {"/a", "/a"};
  twice.skipped_volumes.clear();
  EXPECT_EQ(CheckFrozen(Reply(twice), request).status().code(), Code::kProtocolError);

  auto long_lease = ok;
  long_lease.lease_granted_ms = 60000;
  EXPECT_EQ(CheckFrozen(Reply(long_lease), request).status().code(), Code::kProtocolError);

  EXPECT_EQ(CheckFrozen(Reply(proto::Pong{}), request).status().code(), Code::kProtocolError);
  auto refused =
      CheckFrozen(Reply(proto::ErrorReply{proto::ErrorCode::kAlreadyFrozen, "EBUSY"}), request);
  EXPECT_EQ(refused.status().code(), Code::kAlreadyFrozen);
}

TEST(ReplyCheck, ThawedMustNotContradictItself) {
  proto::Thaw thaw{"job-1", true};
  proto::Thawed ok;
  ok.job_id = "job-1";
  ok.held_whole_window = true;
  ok.thawed_volumes = {"/a"};
  EXPECT_TRUE(CheckThawed(Reply(ok), thaw, {"/a"}).ok());

  auto other_job = ok;
  other_job.job_id = "job-0";
  EXPECT_EQ(CheckThawed(Reply(other_job), thaw, {"/a"}).status().code(), Code::kProtocolError);

  auto liar = ok;
  liar.lease_expired = true;
  EXPECT_EQ(CheckThawed(Reply(liar), thaw, {"/a"}).status().code(), Code::kProtocolError);

  auto stranger = ok;
  stranger.thawed_volumes = {"/a", "/other"};
  EXPECT_EQ(CheckThawed(Reply(stranger), thaw, {"/a"}).status().code(), Code::kProtocolError);
}

TEST(ReplyCheck, InventoryMustBeSelfConsistent) {
  proto::Inventory inv;
  inv.disks = {proto::Disk{"sda", "5000c5", "", "", "", "scsi", 1}};
  inv.volumes = {proto::Volume{"/a", "/dev/sda1", "xfs", true, {"sda"}, 1, {}}};
  EXPECT_TRUE(CheckInventory(Reply(inv)).ok());
  auto unlisted = inv;
  unlisted.volumes[0].disk_names.push_back("sdz");
  EXPECT_EQ(CheckInventory(Reply(unlisted)).status().code(), Code::kProtocolError);
  auto dup = inv;
  dup.disks.push_back(dup.disks[0]);
  EXPECT_EQ(CheckInventory(Reply(dup)).status().code(), Code::kProtocolError);
}

TEST(ReplyCheck, HelloVersion) {
  proto::HelloReply hello;
  EXPECT_TRUE(CheckHelloReply(Reply(hello)).ok());
  hello.protocol_major = 2;
  EXPECT_EQ(CheckHelloReply(Reply(hello)).status().code(), Code::kVersionMismatch);
}

}  // namespace
}  // namespace qb::link
