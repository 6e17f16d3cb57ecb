#include "host-daemon/arrays/rbd/image_spec.h"

#include <gtest/gtest.h>

namespace qb::arrays::rbd {
namespace {

TEST(ImageSpecTest, ParsesPoolImageAndNamespace) {
  Result<ImageSpec> plain = ParseImageSpec("rbd/vm1-disk0");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(plain->pool, "rbd");
  EXPECT_EQ(plain->ns, "");
  EXPECT_EQ(plain->name, "vm1-disk0");
  EXPECT_EQ(plain->ToString(), "rbd/vm1-disk0");

  Result<ImageSpec> with_ns = ParseImageSpec("pool/tenant/img");
  ASSERT_TRUE(with_ns.ok()) << with_ns.status().ToString();
  EXPECT_EQ(with_ns->ns, "tenant");
  EXPECT_EQ(with_ns->ToString(), "pool/tenant/img");
}

TEST(ImageSpecTest, RejectsMalformedVolumes) {
  for (const char* bad :
       {"", "img", "/img", "rbd/", "a/b/c/d", "rbd/img@snap", "rbd//img", "rbd/im\ng"}) {
    Result<ImageSpec> spec = ParseImageSpec(bad);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_EQ(spec.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseImageSpec("rbd/" + std::string(256, 'x')).ok());
  EXPECT_TRUE(ParseImageSpec("rbd/" + std::string(255, 'x')).ok());
}

TEST(ImageSpecTest, GroupIsNamedAfterTheFirstImageWhateverTheOrder) {
  const ImageSpec a{"rbd", "", "vm1-a"};
  const ImageSpec b{"rbd", "", "vm1-b"};
  const ImageSpec c{"other", "", "vm1-c"};
  EXPECT_EQ(GroupFor({a, b}), (GroupSpec{"rbd", "", "qb-vm1-a"}));
  EXPECT_EQ(GroupFor({b, a}), GroupFor({a, b}));
  // Pools sort first: "other" < "rbd".
  EXPECT_EQ(GroupFor({a, b, c}), (GroupSpec{"other", "", "qb-vm1-c"}));
}

TEST(ImageSpecTest, SnapshotRefsRoundTrip) {
  const SnapshotRef image{SnapshotRef::Kind::kImage, "rbd", "", "disk", "qb-k1-disk"};
  EXPECT_EQ(image.ToString(), "rbd/disk@qb-k1-disk");
  const SnapshotRef group{SnapshotRef::Kind::kGroup, "rbd", "ns", "qb-disk", "qb-k1-qb-disk"};
  EXPECT_EQ(group.ToString(), "group:rbd/ns/qb-disk@qb-k1-qb-disk");
  for (const SnapshotRef& ref : {image, group}) {
    Result<SnapshotRef> parsed = ParseSnapshotRef(ref.ToString());
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(*parsed, ref);
  }
}

TEST(ImageSpecTest, RejectsMalformedSnapshotRefs) {
  for (const char* bad :
       {"rbd/disk", "rbd/disk@", "group:rbd@s", "disk@s", "rbd/disk@a@b", "group:", "@s"}) {
    Result<SnapshotRef> ref = ParseSnapshotRef(bad);
    ASSERT_FALSE(ref.ok()) << bad;
    EXPECT_EQ(ref.status().code(), Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace qb::arrays::rbd
