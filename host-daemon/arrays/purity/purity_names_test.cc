#include "host-daemon/arrays/purity/purity_names.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host-daemon/arrays/backend.h"

namespace qb::arrays::purity {
namespace {

TEST(PuritySuffix, EscapesCaseAndPunctuationAndIsValid) {
  EXPECT_EQ(SuffixForJobKey("job42"), "qb-job42");
  EXPECT_EQ(SuffixForJobKey("Job_1.a"), "qb--job-01-1a");
  for (const char* key : {"a", "ABC", "x_y.z", "20261123T015300_vm.web", "Z9"}) {
    const std::string suffix = SuffixForJobKey(key);
    EXPECT_TRUE(IsValidSuffix(suffix)) << suffix;
    EXPECT_EQ(JobKeyOfSuffix(suffix), key) << suffix;
  }
}

TEST(PuritySuffix, KeysDifferingOnlyInCaseGetDifferentSuffixes) {
  // The array compares names case-insensitively; the suffixes must differ even then.
  const std::string a = SuffixForJobKey("Job"), b = SuffixForJobKey("job");
  std::string la = a, lb = b;
  for (auto& c : la) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto& c : lb) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_NE(la, lb);
}

TEST(PuritySuffix, LongKeysAreHashedAndStillValid) {
  const std::string key(64, 'K');
  ASSERT_TRUE(ValidateJobKey(key).ok());
  const std::string suffix = SuffixForJobKey(key);
  EXPECT_TRUE(IsValidSuffix(suffix)) << suffix;
  EXPECT_LE(suffix.size(), kMaxSuffixLength);
  EXPECT_EQ(suffix.rfind("qb-h", 0), 0u);
  EXPECT_EQ(SuffixForJobKey(key), suffix);  // deterministic
  EXPECT_NE(SuffixForJobKey(std::string(64, 'L')), suffix);
  EXPECT_EQ(JobKeyOfSuffix(suffix), "");
  // No short key maps onto the hashed form.
  const std::string tail = suffix.substr(3);
  EXPECT_NE(SuffixForJobKey(tail), suffix);
}

TEST(PuritySuffix, RejectsForeignSuffixes) {
  EXPECT_EQ(JobKeyOfSuffix("daily-1"), "");
  EXPECT_EQ(JobKeyOfSuffix("qb-"), "");
  EXPECT_EQ(JobKeyOfSuffix("qb-a-"), "");
  EXPECT_EQ(JobKeyOfSuffix("qb-a-9"), "");
  EXPECT_FALSE(IsValidSuffix("-a"));
  EXPECT_FALSE(IsValidSuffix("a_b"));
  EXPECT_FALSE(IsValidSuffix(std::string(64, 'a')));
}

TEST(PuritySerial, ParsesEveryHostForm) {
  const std::string serial = "F4A1B2C3D4E5F60718293A4B";
  const std::string naa = "624a9370f4a1b2c3d4e5f60718293a4b";
  EXPECT_EQ(NaaOfSerial(serial), naa);
  for (const std::string& id : std::vector<std::string>{
           naa, "0x" + naa, "naa." + naa, "3" + naa, "/dev/disk/by-id/wwn-0x" + naa,
           "/dev/disk/by-id/scsi-3" + naa, "/dev/disk/by-id/dm-uuid-mpath-3" + naa,
           "624A9370F4A1B2C3D4E5F60718293A4B"}) {
    auto parsed = SerialFromLunId(id);
    ASSERT_TRUE(parsed.has_value()) << id;
    EXPECT_EQ(*parsed, serial) << id;
  }
}

TEST(PuritySerial, RejectsNonPureIdentifiers) {
  EXPECT_FALSE(SerialFromLunId("600a0980383030523424457a4a695266").has_value());  // other OUI
  EXPECT_FALSE(SerialFromLunId("624a9370f4a1").has_value());                      // short
  EXPECT_FALSE(SerialFromLunId("624a9370zza1b2c3d4e5f60718293a4b").has_value());  // not hex
  EXPECT_FALSE(SerialFromLunId("/dev/sda").has_value());
  EXPECT_FALSE(SerialFromLunId("").has_value());
}

TEST(PurityGroupName, DependsOnTheSetOnly) {
  EXPECT_EQ(ProtectionGroupNameFor({"b", "A"}), ProtectionGroupNameFor({"a", "B"}));
  EXPECT_NE(ProtectionGroupNameFor({"a", "b"}), ProtectionGroupNameFor({"a", "b", "c"}));
  EXPECT_EQ(ProtectionGroupNameFor({"a"}).rfind("qb-pg-", 0), 0u);
}

}  // namespace
}  // namespace qb::arrays::purity
