#include "host-daemon/config/config.h"

#include <gtest/gtest.h>

namespace qb::config {
namespace {

using namespace std::chrono_literals;

Config ParseOk(std::string_view text) {
  auto config = ParseConfig(text, "test.toml");
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  return config.ok() ? std::move(config).value() : Config{};
}

// Expects a kInvalidArgument whose message contains every fragment.
void ExpectError(std::string_view text, std::initializer_list<std::string_view> fragments) {
  auto config = ParseConfig(text, "test.toml");
  ASSERT_FALSE(config.ok()) << "parsed: " << text;
  EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
  for (auto fragment : fragments) {
    EXPECT_NE(config.status().message().find(fragment), std::string::npos)
        << "'" << fragment << "' not in: " << config.status().message();
  }
}

TEST(ConfigTest, EmptyFileGivesDefaults) {
  Config config = ParseOk("");
  EXPECT_EQ(config.daemon.control_socket, "/run/quiesce-bridge/quiesced.sock");
  EXPECT_EQ(config.daemon.control_socket_mode, 0660u);
  EXPECT_EQ(config.daemon.worker_threads, 4);
  EXPECT_FALSE(config.libvirt.enabled);
  EXPECT_EQ(config.late_snapshot_policy, LateSnapshotPolicy::kRemove);
}

TEST(ConfigTest, FullConfig) {
  Config config = ParseOk(R"(
[daemon]
control_socket = "/run/qb/ctl.sock"
control_socket_mode = "0640"
control_socket_group = "qbadmin"
catalog = "/var/lib/qb/c.db"
worker_threads = 8
log_level = "debug"

[policy]
late_snapshot = "crash-consistent"

[backends.reflink]
snapshot_dir = "/srv/snaps"
[backends.exec]
script = "/usr/local/bin/array.sh"
timeout_ms = 2500
[backends.san2]
type = "exec"
script = "/opt/san2.sh"
[backends.ceph]
type = "rbd"
client_id = "quiesce"
cluster = "ceph"

[[guests]]
name = "db1"
agent = "unix:/run/qb/db1.sock"
luns = [ { backend = "reflink", volume = "/srv/luns/db1.raw", wwn = "naa.600A:0980:3830" },
         { backend = "exec", volume = "vol-7" } ]
[[guests]]
name = "app1"
agent = "vsock:5:7000"

[groups]
erp = ["db1", "app1"]

[retention]
"*" = { keep_last = 7 }
erp = { max_age = "2w" }
db1 = { keep_last = 3, max_age = 3600 }

[libvirt]
uri = "test:///default"
agent_port = "org.example.agent"
agent_vsock_port = 7000
lun_rules = [ { disk = "network", protocol = "rbd", backend = "ceph" },
              { disk = "file", source_prefix = "/srv/luns/", backend = "reflink" } ]
)");
  EXPECT_EQ(config.daemon.control_socket_mode, 0640u);
  EXPECT_EQ(config.daemon.control_socket_group, "qbadmin");
  EXPECT_EQ(config.daemon.worker_threads, 8);
  EXPECT_EQ(config.late_snapshot_policy, LateSnapshotPolicy::kRecordCrashConsistent);
  ASSERT_EQ(config.backends.size(), 4u);
  EXPECT_EQ(config.FindBackend("reflink")->snapshot_dir, "/srv/snaps");
  EXPECT_EQ(config.FindBackend("exec")->timeout, 2500ms);
  EXPECT_EQ(config.FindBackend("san2")->type, "exec");
  EXPECT_EQ(config.FindBackend("san2")->timeout, qb::limits::kRequestTimeout);
  EXPECT_EQ(config.FindBackend("ceph")->extra.at("client_id"), "quiesce");
  const GuestSettings* db1 = config.FindGuest("db1");
  ASSERT_NE(db1, nullptr);
  EXPECT_EQ(db1->agent.kind, AgentEndpoint::Kind::kUnix);
  EXPECT_EQ(db1->agent.path, "/run/qb/db1.sock");
  ASSERT_EQ(db1->luns.size(), 2u);
  EXPECT_EQ(db1->luns[0].wwn, "600a09803830");
  EXPECT_EQ(db1->luns[1].backend, "exec");
  const GuestSettings* app1 = config.FindGuest("app1");
  ASSERT_NE(app1, nullptr);
  EXPECT_EQ(app1->agent.ToString(), "vsock:5:7000");
  EXPECT_EQ(config.FindGroup("erp")->vms, (std::vector<std::string>{"db1", "app1"}));
  EXPECT_EQ(config.FindRetention("db1")->max_age, std::chrono::seconds(3600));
  EXPECT_EQ(config.FindRetention("erp")->max_age, std::chrono::seconds(14 * 86400));
  EXPECT_EQ(config.FindRetention("other-vm")->keep_last, 7u);
  EXPECT_TRUE(config.libvirt.enabled);
  EXPECT_EQ(config.libvirt.agent_port, "org.example.agent");
  EXPECT_EQ(config.libvirt.agent_vsock_port, 7000u);
  ASSERT_EQ(config.libvirt.lun_rules.size(), 2u);
  EXPECT_EQ(config.libvirt.lun_rules[0].protocol, "rbd");
}

TEST(ConfigTest, UnknownKeyNamesKeyAndLine) {
  ExpectError("[daemon]\nworker_threads = 2\ncontol_socket = \"/x\"\n",
              {"test.toml:3:", "daemon.contol_socket", "unknown key"});
  ExpectError("[deamon]\n", {"test.toml:1:", "deamon", "unknown key"});
  ExpectError("[[guests]]\nname = \"a\"\nagent = \"unix:/a\"\nlun = []\n",
              {"test.toml:4:", "guests[0].lun", "unknown key"});
}

TEST(ConfigTest, WrongTypeNamesKeyAndLine) {
  ExpectError("[daemon]\n\nworker_threads = \"four\"\n",
              {"test.toml:3:", "daemon.worker_threads", "must be an integer"});
  ExpectError("[daemon]\nworker_threads = 0\n", {"daemon.worker_threads", "between 1 and"});
  ExpectError("[daemon]\nlog_level = \"chatty\"\n", {"daemon.log_level"});
  ExpectError("[daemon]\ncontrol_socket_mode = 0o666\n", {"control_socket_mode", "others"});
  ExpectError("[daemon]\ncontrol_socket_mode = \"rw\"\n", {"control_socket_mode", "octal"});
  ExpectError("[daemon]\ncatalog = \"relative.db\"\n", {"daemon.catalog", "absolute"});
  ExpectError("[policy]\nlate_snapshot = \"keep\"\n", {"test.toml:2:", "policy.late_snapshot"});
  ExpectError("[groups]\nerp = \"db1\"\n", {"test.toml:2:", "groups.erp", "array"});
  ExpectError("[retention]\ndb1 = { keep_last = 3, max_age = \"7 days\" }\n",
              {"test.toml:2:", "retention.db1.max_age"});
  ExpectError("[retention]\ndb1 = { }\n", {"retention.db1", "keep_last and/or max_age"});
}

TEST(ConfigTest, BadEndpointsAreErrors) {
  const std::string prefix = "[[guests]]\nname = \"g\"\nagent = ";
  ExpectError(prefix + "\"tcp:1.2.3.4:5\"\n", {"test.toml:3:", "guests[0].agent", "unix:"});
  ExpectError(prefix + "\"unix:relative.sock\"\n", {"guests[0].agent", "absolute"});
  ExpectError(prefix + "\"vsock:2:7000\"\n", {"guests[0].agent", "reserved"});
  ExpectError(prefix + "\"vsock:5\"\n", {"guests[0].agent", "vsock:CID:PORT"});
  ExpectError(prefix + "\"vsock:5:x\"\n", {"guests[0].agent"});
  EXPECT_TRUE(ParseAgentEndpoint("vsock:3:1").ok());
  EXPECT_EQ(ParseAgentEndpoint("unix:/" + std::string(120, 'a')).status().code(),
            Code::kInvalidArgument);
}

TEST(ConfigTest, ReferencesMustResolve) {
  ExpectError(
      "[[guests]]\nname = \"g\"\nagent = \"unix:/g\"\n"
      "luns = [ { backend = \"reflnk\", volume = \"/l.raw\" } ]\n",
      {"test.toml:4:", "guests[0].luns[0].backend", "reflnk"});
  ExpectError("[libvirt]\nlun_rules = [ { disk = \"file\", backend = \"nope\" } ]\n",
              {"libvirt.lun_rules[0].backend", "nope"});
  ExpectError(
      "[backends.reflink]\n[libvirt]\nlun_rules = [ { disk = \"tape\", backend = \"reflink\" } "
      "]\n",
      {"libvirt.lun_rules[0].disk"});
  ExpectError("[backends.exec]\ntimeout_ms = 5\n", {"backends.exec.script", "required"});
  ExpectError("[backends.x]\n", {"backends.x.type", "unknown backend type"});
  ExpectError(
      "[[guests]]\nname = \"g\"\nagent = \"unix:/g\"\n[[guests]]\nname = \"g\"\n"
      "agent = \"unix:/h\"\n",
      {"test.toml:5:", "defined twice"});
  ExpectError(
      "[backends.reflink]\n[[guests]]\nname = \"g\"\nagent = \"unix:/g\"\n"
      "luns = [ { backend = \"reflink\", volume = \"/l\", wwn = \"xyz\" } ]\n",
      {"wwn", "hexadecimal"});
}

TEST(ConfigTest, LunDiskNamesTheGuestDevice) {
  Config config = ParseOk(R"(
[backends.reflink]
[[guests]]
name = "g"
agent = "unix:/g"
luns = [ { backend = "reflink", volume = "/srv/a.raw", disk = "loop7" },
         { backend = "reflink", volume = "/srv/b.raw", wwn = "600a0980" } ]
)");
  const GuestSettings* g = config.FindGuest("g");
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->luns.size(), 2u);
  EXPECT_EQ(g->luns[0].disk, "loop7");
  EXPECT_EQ(g->luns[1].disk, "");
  EXPECT_EQ(config.source_name, "test.toml");

  const std::string prefix = "[backends.reflink]\n[[guests]]\nname = \"g\"\nagent = \"unix:/g\"\n";
  ExpectError(prefix + "luns = [ { backend = \"reflink\", volume = \"/a\", dsik = \"vdb\" } ]\n",
              {"test.toml:5:", "guests[0].luns[0].dsik", "unknown key", "disk"});
  ExpectError(
      prefix + "luns = [ { backend = \"reflink\", volume = \"/a\", disk = \"/dev/vdb\" } ]\n",
      {"test.toml:5:", "guests[0].luns[0].disk", "without /dev/"});
  ExpectError(prefix + "luns = [ { backend = \"reflink\", volume = \"/a\", disk = \"\" } ]\n",
              {"guests[0].luns[0].disk"});
  ExpectError(prefix + "luns = [ { backend = \"reflink\", volume = \"/a\", disk = 3 } ]\n",
              {"guests[0].luns[0].disk", "must be a string"});
  ExpectError(prefix +
                  "luns = [ { backend = \"reflink\", volume = \"/a\", disk = \"vdb\" },\n"
                  "         { backend = \"reflink\", volume = \"/b\", disk = \"vdb\" } ]\n",
              {"test.toml:6:", "guests[0].luns[1].disk", "two LUNs"});
}

TEST(ConfigTest, RbdBackendKeys) {
  Config config = ParseOk(R"(
[backends.ceph]
type = "rbd"
conf = "/etc/ceph/ceph.conf"
cluster = "ceph"
client_id = "quiesce"
keyring = "/etc/ceph/ceph.client.quiesce.keyring"
op_timeout_ms = 5000
connect_timeout_ms = 3000
)");
  const BackendSettings* ceph = config.FindBackend("ceph");
  ASSERT_NE(ceph, nullptr);
  EXPECT_EQ(ceph->type, "rbd");
  EXPECT_EQ(ceph->line, 2);
  EXPECT_EQ(ceph->key_lines.at("keyring"), 7);
  EXPECT_EQ(ceph->extra.at("keyring"), "/etc/ceph/ceph.client.quiesce.keyring");
  EXPECT_EQ(ceph->extra.at("op_timeout_ms"), "5000");
  EXPECT_EQ(ceph->extra.size(), 6u);
  EXPECT_EQ(ParseOk("[backends.rbd]\n").FindBackend("rbd")->type, "rbd");

  const std::string head = "[backends.ceph]\ntype = \"rbd\"\n";
  ExpectError(head + "keyrin = \"/k\"\n",
              {"test.toml:3:", "backends.ceph.keyrin", "unknown key", "keyring"});
  ExpectError(head + "pool = \"vms\"\n", {"test.toml:3:", "backends.ceph.pool", "pool/image"});
  ExpectError(head + "keyring = \"k.keyring\"\n",
              {"test.toml:3:", "backends.ceph.keyring", "absolute"});
  ExpectError(head + "op_timeout_ms = 10\n",
              {"test.toml:3:", "backends.ceph.op_timeout_ms", "between"});
  ExpectError(head + "op_timeout_ms = \"5s\"\n", {"backends.ceph.op_timeout_ms", "integer"});
  ExpectError(head + "client_id = \"client.admin\"\n", {"test.toml:3:", "backends.ceph.client_id"});
}

TEST(ConfigTest, PurityBackendKeys) {
  Config config = ParseOk(R"(
[backends.fa1]
type = "purity"
host = "fa1.example.net"
port = 8443
ca_file = "/etc/quiesce-bridge/fa1-ca.pem"
insecure = false
api_version = "2.21"
api_token_file = "/etc/quiesce-bridge/fa1.token"
eradicate_on_remove = true
dry_run = false
)");
  const BackendSettings* fa = config.FindBackend("fa1");
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(fa->extra.at("port"), "8443");
  EXPECT_EQ(fa->extra.at("insecure"), "false");
  EXPECT_EQ(fa->extra.at("eradicate_on_remove"), "true");
  EXPECT_EQ(fa->extra.at("api_token_file"), "/etc/quiesce-bridge/fa1.token");
  EXPECT_EQ(fa->key_lines.at("api_token_file"), 9);
  ParseOk("[backends.purity]\nhost = \"a\"\napi_token_credential = \"fa-token\"\n");

  const std::string head = "[backends.fa]\ntype = \"purity\"\n";
  const std::string token = "api_token_file = \"/t\"\n";
  ExpectError(head + token, {"test.toml:1:", "backends.fa.host", "is required"});
  ExpectError(head + "host = \"a\"\n", {"test.toml:1:", "backends.fa.api_token_file", "required"});
  ExpectError(head + "host = \"a\"\n" + token + "api_token_credential = \"c\"\n",
              {"test.toml:5:", "only one"});
  ExpectError(head + "host = \"a\"\n" + token + "hots = \"b\"\n",
              {"test.toml:5:", "backends.fa.hots", "unknown key"});
  ExpectError(head + "host = \"a\"\n" + token + "api_token = \"secret\"\n",
              {"test.toml:5:", "backends.fa.api_token", "unknown key"});
  ExpectError(head + "host = \"a\"\n" + token + "insecure = \"yes\"\n",
              {"test.toml:5:", "backends.fa.insecure", "true or false"});
  ExpectError(head + "host = \"a\"\n" + token + "port = 70000\n",
              {"test.toml:5:", "backends.fa.port", "between 1 and 65535"});
  ExpectError(head + "host = \"a\"\n" + token + "api_version = \"1.19\"\n",
              {"test.toml:5:", "backends.fa.api_version"});
  ExpectError(head + "host = \"a\"\napi_token_file = \"fa.token\"\n",
              {"test.toml:4:", "backends.fa.api_token_file", "absolute"});
}

TEST(ConfigTest, SyntaxErrorHasLine) {
  ExpectError("[daemon]\nworker_threads = = 3\n", {"test.toml:2:"});
}

TEST(ConfigTest, AgesParse) {
  EXPECT_EQ(*ParseAge("90"), 90s);
  EXPECT_EQ(*ParseAge("15m"), 900s);
  EXPECT_EQ(*ParseAge("36h"), std::chrono::seconds(36 * 3600));
  EXPECT_EQ(*ParseAge("7d"), std::chrono::seconds(7 * 86400));
  EXPECT_FALSE(ParseAge("0d").ok());
  EXPECT_FALSE(ParseAge("-1h").ok());
  EXPECT_FALSE(ParseAge("7y").ok());
  EXPECT_FALSE(ParseAge("").ok());
}

TEST(ConfigTest, ShippedSampleParses) {
  auto config = LoadConfigFile(QB_SAMPLE_CONFIG);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_NE(config->FindGuest("db1"), nullptr);
  EXPECT_EQ(LoadConfigFile("/nonexistent/quiesced.toml").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace qb::config
