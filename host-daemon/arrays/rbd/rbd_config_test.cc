#include "host-daemon/arrays/rbd/rbd_config.h"

#include <gtest/gtest.h>

namespace qb::arrays::rbd {
namespace {

TEST(RbdConfigTest, DefaultsBoundEveryLibradosCall) {
  Result<RbdConfig> config = RbdConfigFromSettings("ceph", {});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "ceph");
  EXPECT_EQ(config->client_id, "admin");
  EXPECT_TRUE(config->conf_path.empty());
  EXPECT_EQ(config->op_timeout, kRbdOpTimeout);
  EXPECT_EQ(config->connect_timeout, kRbdConnectTimeout);
  EXPECT_GT(config->op_timeout, std::chrono::milliseconds(0));
}

TEST(RbdConfigTest, ReadsEveryKey) {
  Result<RbdConfig> config =
      RbdConfigFromSettings("ceph", {{"type", "rbd"},
                                     {"conf", "/etc/ceph/ceph.conf"},
                                     {"cluster", "backup"},
                                     {"client_id", "quiesce"},
                                     {"keyring", "/etc/ceph/ceph.client.quiesce.keyring"},
                                     {"op_timeout_ms", "5000"},
                                     {"connect_timeout_ms", "2500"}});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->conf_path, "/etc/ceph/ceph.conf");
  EXPECT_EQ(config->client_id, "quiesce");
  EXPECT_EQ(config->cluster, "backup");
  EXPECT_EQ(config->keyring_path, "/etc/ceph/ceph.client.quiesce.keyring");
  EXPECT_EQ(config->op_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(config->connect_timeout, std::chrono::milliseconds(2500));
}

TEST(RbdConfigTest, ErrorsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> bad = {{"pool", "vms"},
                                                                {"conf", "ceph.conf"},
                                                                {"keyring", ""},
                                                                {"client_id", "client.x"},
                                                                {"op_timeout_ms", "0"},
                                                                {"op_timeout_ms", "10s"},
                                                                {"connect_timeout_ms", "999999999"},
                                                                {"type", "exec"},
                                                                {"cluster", "a/b"},
                                                                {"cluster", ""}};
  for (const auto& [key, value] : bad) {
    Result<RbdConfig> config = RbdConfigFromSettings("ceph", {{key, value}});
    ASSERT_FALSE(config.ok()) << key << "=" << value;
    EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
    EXPECT_NE(config.status().message().find("backends.ceph." + key), std::string::npos)
        << config.status().message();
  }
}

}  // namespace
}  // namespace qb::arrays::rbd
