#include "host-daemon/jobs/freeze_plan.h"

#include <gtest/gtest.h>

namespace qb::jobs {
namespace {

proto::Inventory TwoDiskGuest() {
  proto::Inventory inv;
  inv.disks = {proto::Disk{"sda", "600A0B80001", "S1", "", "", "scsi", 1},
               proto::Disk{"sdb", "600a0b80002", "S2", "", "", "scsi", 1},
               proto::Disk{"vda", "", "BOOT", "", "", "virtio", 1}};
  inv.volumes = {proto::Volume{"/data", "/dev/sda1", "xfs", true, {"sda"}, 1, {}},
                 proto::Volume{"/logs", "/dev/md0", "ext4", true, {"sda", "sdb"}, 1, {}},
                 proto::Volume{"/", "/dev/vda1", "ext4", true, {"vda"}, 1, {}},
                 proto::Volume{"/run", "tmpfs", "tmpfs", false, {}, 0, {}}};
  return inv;
}

GuestSpec SpecWith(std::vector<arrays::LunSpec> luns) {
  GuestSpec spec;
  spec.name = "vm1";
  spec.luns = std::move(luns);
  return spec;
}

TEST(FreezePlan, FreezesVolumesWhollyOnSnapshottedLuns) {
  auto spec =
      SpecWith({{"fake", "/luns/a", "naa.600a0b80001"}, {"fake", "/luns/b", "600a0b80002"}});
  auto plan = PlanFreeze(spec, TwoDiskGuest(), false);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->freeze_volumes, (std::vector<std::string>{"/data", "/logs"}));
  EXPECT_EQ(plan->not_covered, std::vector<std::string>{"/"});
}

TEST(FreezePlan, VolumeSpanningOtherDisksIsRefusedUnlessAllowed) {
  auto spec = SpecWith({{"fake", "/luns/a", "600a0b80001"}});
  auto refused = PlanFreeze(spec, TwoDiskGuest(), false);
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("/logs"), std::string::npos);
  auto allowed = PlanFreeze(spec, TwoDiskGuest(), true);
  ASSERT_TRUE(allowed.ok());
  EXPECT_EQ(allowed->partial, std::vector<std::string>{"/logs"});
  EXPECT_EQ(allowed->freeze_volumes, (std::vector<std::string>{"/data", "/logs"}));
}

TEST(FreezePlan, LunUnknownToTheGuestIsRefused) {
  auto spec = SpecWith({{"fake", "/luns/z", "deadbeef"}});
  EXPECT_EQ(PlanFreeze(spec, TwoDiskGuest(), true).status().code(), Code::kInvalidArgument);
}

TEST(FreezePlan, DiskMapMatchesLunsWithoutWwn) {
  auto spec = SpecWith({{"fake", "/luns/a.raw", ""}});
  spec.disk_map["sda"] = "/luns/a.raw";
  auto inv = TwoDiskGuest();
  inv.volumes.erase(inv.volumes.begin() + 1);  // no /logs
  auto plan = PlanFreeze(spec, inv, false);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->freeze_volumes, std::vector<std::string>{"/data"});
}

TEST(FreezePlan, GuestInventoryCannotAddLuns) {
  // The guest claims every disk carries the WWN of the one LUN; it can only change which of
  // its volumes get frozen, never what the host snapshots (the plan has no LUN list at all).
  auto spec = SpecWith({{"fake", "/luns/a", "600a0b80001"}});
  auto inv = TwoDiskGuest();
  for (auto& d : inv.disks) d.wwn = "600a0b80001";
  auto plan = PlanFreeze(spec, inv, false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->freeze_volumes.size(), 3u);
}

TEST(FreezePlan, UnfreezableVolumeOnALunIsUnsupported) {
  auto spec = SpecWith({{"fake", "/luns/a", "600a0b80001"}});
  auto inv = TwoDiskGuest();
  inv.volumes.erase(inv.volumes.begin() + 1);
  inv.volumes[0].freezable = false;
  EXPECT_EQ(PlanFreeze(spec, inv, false).status().code(), Code::kUnsupported);
}

TEST(FreezePlan, NormalizeWwn) {
  EXPECT_EQ(NormalizeWwn("naa.600A0B80"), "600a0b80");
  EXPECT_EQ(NormalizeWwn("0x60:0a:0b"), "600a0b");
}

}  // namespace
}  // namespace qb::jobs
