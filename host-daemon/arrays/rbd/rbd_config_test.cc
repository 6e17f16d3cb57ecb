#include "host-daemon/arrays/rbd/rbd_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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

// The keyring's owner and mode are checked at config load, without a cluster: world-readable
// or group-writable keyrings are refused, a group-readable one (0640 root:ceph, the Debian
// default) is accepted with a warning, 0600 silently.
TEST(RbdConfigTest, KeyringOwnerAndModeAreChecked) {
  std::string dir = (std::filesystem::temp_directory_path() / "qb-keyring-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string keyring = dir + "/ceph.client.quiesce.keyring";
  std::ofstream(keyring) << "[client.quiesce]\n\tkey = AQBnotarealkeyAAAAAAAAAAAAAAAAAAAAAAAA==\n";
  struct Case {
    mode_t mode;
    bool refused;
    bool warned;
  };
  for (const Case c : {Case{0600, false, false}, Case{0400, false, false}, Case{0640, false, true},
                       Case{0644, true, false}, Case{0660, true, false}, Case{0606, true, false}}) {
    ASSERT_EQ(::chmod(keyring.c_str(), c.mode), 0);
    auto checked = CheckKeyringFile(keyring);
    EXPECT_EQ(!checked.ok(), c.refused) << std::oct << c.mode;
    if (!checked.ok()) {
      EXPECT_EQ(checked.status().code(), Code::kPermissionDenied);
      EXPECT_NE(checked.status().message().find(keyring), std::string::npos);
      EXPECT_EQ(checked.status().message().find("AQB"), std::string::npos) << "secret leaked";
    } else {
      EXPECT_EQ(!checked->empty(), c.warned) << std::oct << c.mode << ": " << *checked;
    }
    auto config = RbdConfigFromSettings("ceph", {{"keyring", keyring}});
    EXPECT_EQ(!config.ok(), c.refused) << std::oct << c.mode;
  }
  // Not owned by root or the daemon's user (only checkable as root).
  if (::geteuid() == 0) {
    ASSERT_EQ(::chmod(keyring.c_str(), 0600), 0);
    ASSERT_EQ(::chown(keyring.c_str(), 4242, 4242), 0);
    EXPECT_EQ(CheckKeyringFile(keyring).status().code(), Code::kPermissionDenied);
  }
  // A missing keyring is left to librados (it says so on connect).
  auto missing = CheckKeyringFile(dir + "/missing.keyring");
  EXPECT_TRUE(missing.ok() && missing->empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace qb::arrays::rbd
