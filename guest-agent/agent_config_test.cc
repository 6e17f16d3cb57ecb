#include "guest-agent/agent_config.h"

#include <gtest/gtest.h>

namespace qb::agent {
namespace {

using namespace std::chrono_literals;

TEST(AgentConfigTest, EmptyIsDefaults) {
  auto config = ParseAgentConfig("");
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->virtio_serial);
  EXPECT_EQ(config->port_name, "org.quiesce-bridge.agent.0");
  EXPECT_EQ(config->vsock_port, 4470u);
  EXPECT_EQ(config->lease_cap, limits::kDefaultLease);
  EXPECT_EQ(config->hook_timeout, limits::kDefaultHookTimeout);
  EXPECT_EQ(config->run_dir, "/run/quiesce-agent");
}

TEST(AgentConfigTest, ReadsEverySection) {
  auto config = ParseAgentConfig(R"(
[transport]
virtio_serial = false
port_name = "org.example.port"
vsock = true
vsock_port = 5000
unix_path = "/run/qa.sock"
[freeze]
default_lease_ms = 4000
lease_cap_ms = 20000
run_dir = "/tmp/run"
[hooks]
dir = "/opt/hooks"
timeout_ms = 1500
[log]
level = "debug"
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_FALSE(config->virtio_serial);
  EXPECT_EQ(config->port_name, "org.example.port");
  EXPECT_TRUE(config->vsock);
  EXPECT_EQ(config->vsock_port, 5000u);
  EXPECT_EQ(config->unix_path, "/run/qa.sock");
  EXPECT_EQ(config->default_lease, 4s);
  EXPECT_EQ(config->lease_cap, 20s);
  EXPECT_EQ(config->hooks_dir, "/opt/hooks");
  EXPECT_EQ(config->hook_timeout, 1500ms);
  EXPECT_EQ(config->log_level, "debug");
}

TEST(AgentConfigTest, TyposAndWrongTypesNameTheKey) {
  auto typo = ParseAgentConfig("[freeze]\nlease_cap = 5000\n");
  EXPECT_EQ(typo.status().code(), Code::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("freeze.lease_cap"), std::string::npos);
  auto section = ParseAgentConfig("[hook]\ndir = \"/x\"\n");
  EXPECT_NE(section.status().message().find("hook"), std::string::npos);
  auto type = ParseAgentConfig("[transport]\nvsock_port = \"4470\"\n");
  EXPECT_NE(type.status().message().find("transport.vsock_port"), std::string::npos);
  auto range = ParseAgentConfig("[freeze]\nlease_cap_ms = 600000\n");
  EXPECT_NE(range.status().message().find("freeze.lease_cap_ms"), std::string::npos);
  auto level = ParseAgentConfig("[log]\nlevel = \"loud\"\n");
  EXPECT_NE(level.status().message().find("log.level"), std::string::npos);
  auto syntax = ParseAgentConfig("[freeze\n");
  EXPECT_NE(syntax.status().message().find("line 1"), std::string::npos);
}

TEST(AgentConfigTest, DefaultLeaseFollowsASmallerCap) {
  auto config = ParseAgentConfig("[freeze]\nlease_cap_ms = 3000\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->default_lease, 3s);
  auto conflict = ParseAgentConfig("[freeze]\nlease_cap_ms = 3000\ndefault_lease_ms = 5000\n");
  EXPECT_NE(conflict.status().message().find("freeze.default_lease_ms"), std::string::npos);
}

TEST(AgentConfigTest, TheSampleConfigParses) {
  auto config = LoadAgentConfig(QB_AGENT_SAMPLE_CONFIG);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
}

}  // namespace
}  // namespace qb::agent
