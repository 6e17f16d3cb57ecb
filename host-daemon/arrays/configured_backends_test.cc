#include "host-daemon/arrays/configured_backends.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace qb::arrays {
namespace {

// 1 when this tree was built with librbd (CMake sets it from the qb_arrays_rbd target).
constexpr bool kHaveRbd = QB_HAVE_RBD != 0;

class ConfiguredBackendsTest : public ::testing::Test {
 protected:
  // Under the working directory (the build tree), not /tmp: the exec backend refuses a script
  // with a world-writable directory on its path.
  void SetUp() override {
    dir_ = (std::filesystem::current_path() / "qb-cfgb-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir_.data()), nullptr);
    script_ = dir_ + "/a.sh";
    std::ofstream(script_) << "#!/bin/sh\ncat >/dev/null\n"
                              "echo '{\"ok\":true,\"capabilities\":{\"clone\":true}}'\n";
    std::filesystem::permissions(script_, std::filesystem::perms::owner_all);
    token_ = dir_ + "/fa.token";
    std::ofstream(token_) << "secret-token\n";
    std::filesystem::permissions(token_, std::filesystem::perms::owner_read);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_, script_, token_;
};

TEST_F(ConfiguredBackendsTest, BuildsEveryConfiguredType) {
  std::string text = "[backends.reflink]\n[backends.san]\ntype = \"exec\"\nscript = \"" + script_ +
                     "\"\n[backends.fa]\ntype = \"purity\"\nhost = \"127.0.0.1\"\n"
                     "api_token_file = \"" +
                     token_ + "\"\n";
  if (kHaveRbd) text += "[backends.ceph]\ntype = \"rbd\"\nclient_id = \"quiesce\"\n";
  auto config = config::ParseConfig(text, "t.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  BackendSet set;
  const Status added = AddConfiguredBackends(*config, set);
  ASSERT_TRUE(added.ok()) << added.ToString();
  std::vector<std::string> expected{"fa", "reflink", "san"};
  if (kHaveRbd) expected.insert(expected.begin(), "ceph");
  EXPECT_EQ(set.Names(), expected);
  EXPECT_TRUE(set.Find("san")->capabilities().clone);
  EXPECT_FALSE(set.Find("reflink")->capabilities().atomic_group);
  EXPECT_TRUE(set.Find("fa")->capabilities().atomic_group);
  if (kHaveRbd) {
    EXPECT_TRUE(set.Find("ceph")->capabilities().atomic_group);
  }
}

TEST_F(ConfiguredBackendsTest, FactoryErrorsPointIntoTheFile) {
  BackendSet set;
  auto broken = config::ParseConfig("[backends.exec]\nscript = \"/nonexistent/x.sh\"\n", "t.toml");
  ASSERT_TRUE(broken.ok());
  Status failed = AddConfiguredBackends(*broken, set);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.message().rfind("t.toml:1: backends.exec: ", 0), 0u) << failed.ToString();

  std::filesystem::permissions(token_, std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  auto open_token = config::ParseConfig(
      "[backends.fa]\ntype = \"purity\"\nhost = \"h\"\n\napi_token_file = \"" + token_ + "\"\n",
      "t.toml");
  ASSERT_TRUE(open_token.ok()) << open_token.status().ToString();
  failed = AddConfiguredBackends(*open_token, set);
  EXPECT_EQ(failed.code(), Code::kPermissionDenied);
  EXPECT_EQ(failed.message().rfind("t.toml:5: backends.fa: ", 0), 0u) << failed.ToString();
  EXPECT_EQ(failed.message().find("secret-token"), std::string::npos);

  auto missing = config::ParseConfig(
      "[backends.fa]\ntype = \"purity\"\nhost = \"h\"\napi_token_file = \"/nonexistent/t\"\n",
      "t.toml");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(AddConfiguredBackends(*missing, set).code(), Code::kNotFound);

  auto rbd = config::ParseConfig("[backends.ceph]\ntype = \"rbd\"\n", "t.toml");
  ASSERT_TRUE(rbd.ok());
  failed = AddConfiguredBackends(*rbd, set);
  if (kHaveRbd) {
    EXPECT_TRUE(failed.ok()) << failed.ToString();
  } else {
    EXPECT_EQ(failed.code(), Code::kUnsupported);
    EXPECT_EQ(failed.message().rfind("t.toml:1: backends.ceph: ", 0), 0u) << failed.ToString();
  }
}

TEST_F(ConfiguredBackendsTest, DuplicateNameIsAConflict) {
  auto config = config::ParseConfig("[backends.reflink]\n", "t.toml");
  ASSERT_TRUE(config.ok());
  BackendSet set;
  ASSERT_TRUE(AddConfiguredBackends(*config, set).ok());
  const Status again = AddConfiguredBackends(*config, set);
  EXPECT_EQ(again.code(), Code::kConflict);
  EXPECT_EQ(again.message().rfind("t.toml:1: backends.reflink", 0), 0u) << again.ToString();
}

}  // namespace
}  // namespace qb::arrays
