#include "host-daemon/arrays/configured_backends.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace qb::arrays {
namespace {

TEST(ConfiguredBackendsTest, BuildsReflinkAndExecAndSkipsOthers) {
  std::string dir = (std::filesystem::temp_directory_path() / "qb-cfgb-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string script = dir + "/a.sh";
  std::ofstream(script) << "#!/bin/sh\ncat >/dev/null\n"
                           "echo '{\"ok\":true,\"capabilities\":{\"clone\":true}}'\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  auto config =
      config::ParseConfig("[backends.reflink]\n[backends.san]\ntype = \"exec\"\nscript = \"" +
                              script + "\"\n[backends.ceph]\ntype = \"rbd\"\npool = \"p\"\n",
                          "t.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  BackendSet set;
  std::vector<std::string> skipped;
  const Status added = AddConfiguredBackends(*config, set, &skipped);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(added.ok()) << added.ToString();
  EXPECT_EQ(set.Names(), (std::vector<std::string>{"reflink", "san"}));
  EXPECT_TRUE(set.Find("san")->capabilities().clone);
  EXPECT_FALSE(set.Find("reflink")->capabilities().atomic_group);
  EXPECT_EQ(skipped, (std::vector<std::string>{"ceph"}));

  BackendSet again;
  auto broken = config::ParseConfig("[backends.exec]\nscript = \"/nonexistent/x.sh\"\n", "t");
  ASSERT_TRUE(broken.ok());
  const Status failed = AddConfiguredBackends(*broken, again, nullptr);
  EXPECT_EQ(failed.code(), Code::kInvalidArgument);
  EXPECT_NE(failed.message().find("backend exec"), std::string::npos) << failed.ToString();
}

}  // namespace
}  // namespace qb::arrays
