#include "guest-agent/linux/transports.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/vm_sockets.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/stat.h>
#include <termios.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstring>
#include <fstream>

#include "guest-agent/linux/fsfreeze_service.h"
#include "guest-agent/linux/testing/loop_fs.h"
#include "guest-agent/linux/testing/run_coro.h"
#include "protocol/message_stream.h"

namespace qb::agent {
namespace {

TEST(VsockEndpointTest, EncodesFamilyCidAndPort) {
  auto endpoint = VsockEndpoint(VMADDR_CID_ANY, kDefaultVsockPort);
  ASSERT_EQ(endpoint.size(), sizeof(sockaddr_vm));
  sockaddr_vm address;
  std::memcpy(&address, endpoint.data(), sizeof address);
  EXPECT_EQ(address.svm_family, AF_VSOCK);
  EXPECT_EQ(address.svm_cid, VMADDR_CID_ANY);
  EXPECT_EQ(address.svm_port, 4470u);
  EXPECT_EQ(endpoint.protocol().family(), AF_VSOCK);
  auto other = VsockEndpoint(3, 1234);
  std::memcpy(&address, other.data(), sizeof address);
  EXPECT_EQ(address.svm_cid, 3u);
  EXPECT_EQ(address.svm_port, 1234u);
}

TEST(FindVirtioPortTest, PrefersTheUdevSymlinkThenScansSysfs) {
  testing::TempDir dir;
  std::string dev = dir.path() + "/dev", sys = dir.path() + "/sys";
  std::string cls = sys + "/class/virtio-ports";
  ASSERT_EQ(testing::Shell("mkdir -p '" + cls + "/vport0p1' '" + cls + "/vport0p2' '" + dev + "'"),
            0);
  std::ofstream(cls + "/vport0p1/name") << "org.qemu.guest_agent.0\n";
  std::ofstream(cls + "/vport0p2/name") << "org.quiesce-bridge.agent.0\n";
  auto scanned = FindVirtioPort(kDefaultPortName, dev, sys);
  ASSERT_TRUE(scanned.ok());
  EXPECT_EQ(*scanned, dev + "/vport0p2");

  ASSERT_EQ(testing::Shell("touch '" + dev + "/vport0p2' && mkdir -p '" + dev +
                           "/virtio-ports' && ln -s ../vport0p2 '" + dev +
                           "/virtio-ports/org.quiesce-bridge.agent.0'"),
            0);
  auto linked = FindVirtioPort(kDefaultPortName, dev, sys);
  ASSERT_TRUE(linked.ok());
  EXPECT_EQ(*linked, dev + "/virtio-ports/org.quiesce-bridge.agent.0");

  EXPECT_EQ(FindVirtioPort("org.none", dev, sys).status().code(), Code::kNotFound);
}

// The virtio-serial path end to end, with a pseudo-terminal in raw mode standing in for the
// port: the slave is "the guest's port device" (found through a fake /dev/virtio-ports symlink),
// the master is the host's end. A real port is exercised in the VM tests.
TEST(ServeVirtioPortTest, ServesSessionsOnThePortAndANewHelloStartsANewOne) {
  using namespace std::chrono_literals;
  namespace asio = boost::asio;
  testing::TempDir dir;
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  std::string slave = ::ptsname(master);
  termios raw{};
  ASSERT_EQ(::tcgetattr(master, &raw), 0);
  ::cfmakeraw(&raw);
  ASSERT_EQ(::tcsetattr(master, TCSANOW, &raw), 0);
  std::string dev = dir.path() + "/dev";
  ASSERT_EQ(
      testing::Shell("mkdir -p '" + dev + "/virtio-ports' '" + dir.path() + "/sys' && ln -s '" +
                     slave + "' '" + dev + "/virtio-ports/" + kDefaultPortName + "'"),
      0);

  asio::io_context io;
  FsFreezeServiceOptions options;
  options.run_dir = dir.path() + "/run";
  options.hooks_dir = dir.path() + "/hooks";
  auto log = std::make_shared<spdlog::logger>("port-test",
                                              std::make_shared<spdlog::sinks::null_sink_mt>());
  options.logger = log;
  FsFreezeService service(io.get_executor(), options);
  asio::co_spawn(io, ServeVirtioPort(kDefaultPortName, service, log, dev, dir.path() + "/sys"),
                 asio::detached);

  using Client = proto::AgentClient<asio::posix::stream_descriptor>;
  auto client = std::make_shared<Client>(asio::posix::stream_descriptor(io, master));
  client->Start();
  auto request = [&](proto::AgentBody body, std::chrono::milliseconds deadline) {
    return testing::RunCoro(io, client->Request(std::move(body), deadline));
  };
  client->SetNonce(100);
  auto hello = request(proto::Hello{}, 30s);
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_TRUE(std::holds_alternative<proto::HelloReply>(hello->body));
  EXPECT_EQ(hello->nonce, 100u);

  // Half a frame of an "old daemon", then a new daemon's Hello: a new session.
  std::vector<std::uint8_t> half = proto::EncodeAgent(proto::AgentMessage{1, 100, proto::Ping{}});
  half.resize(half.size() / 2);
  ASSERT_TRUE(testing::RunCoro(io, client->channel().WriteRaw(half)).ok());
  client->SetNonce(200);
  auto second = request(proto::Hello{}, 30s);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(std::holds_alternative<proto::HelloReply>(second->body));
  auto status = request(proto::StatusRequest{}, 30s);
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(std::holds_alternative<proto::AgentStatus>(status->body));
  // The old session's nonce is no longer served.
  client->SetNonce(100);
  EXPECT_EQ(request(proto::Ping{}, 500ms).status().code(), Code::kTimeout);
  client->Close();
}

}  // namespace
}  // namespace qb::agent
