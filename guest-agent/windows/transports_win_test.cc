// Transports under Wine: a named pipe stands in for the virtio-serial port (both are overlapped
// byte-stream handles driven by asio::windows::stream_handle), carrying real AgentSessions
// served by the VSS agent service over the fake VSS.
#include "guest-agent/windows/transports_win.h"

#include <gtest/gtest.h>
#include <process.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include "guest-agent/windows/testing/fixed_inventory.h"
#include "guest-agent/windows/vss/in_process_hold.h"
#include "guest-agent/windows/vss/testing/fake_vss.h"
#include "guest-agent/windows/vss_agent_service.h"
#include "protocol/frame.h"
#include "protocol/message_stream.h"

namespace qb::agent::win {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Client = proto::AgentClient<asio::windows::stream_handle>;

constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

std::string UniquePipeName() {
  static int counter = 0;
  return "\\\\.\\pipe\\qb-agent-test-" + std::to_string(_getpid()) + "-" +
         std::to_string(++counter);
}

struct PipeRig {
  PipeRig() : provider(hold), vss(Options(), provider), requester(vss, hold) {
    log = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    VssAgentServiceOptions options;
    options.agent_version = "pipe-test";
    options.logger = log;
    service = std::make_unique<VssAgentService>(io.get_executor(), requester, inventory, options);
    asio::co_spawn(io, ServeNamedPipe(pipe_name, *service, log), asio::detached);
  }
  ~PipeRig() {
    io.stop();
    service.reset();
  }
  static FakeVssOptions Options() {
    FakeVssOptions o;
    WriterMetadata sql;
    sql.name = "SqlServerWriter";
    sql.components = {{"SQL01", "Sales", true, {"D:\\SQL\\"}}};
    o.writers = {sql};
    return o;
  }

  // Runs `work` on the io_context until it completes.
  template <typename T>
  T Run(asio::awaitable<T> work) {
    std::optional<T> out;
    asio::co_spawn(
        io,
        [&out, work = std::move(work)]() mutable -> asio::awaitable<void> {
          T value = co_await std::move(work);
          out.emplace(std::move(value));
        },
        asio::detached);
    const auto end = std::chrono::steady_clock::now() + kWait;
    while (!out && std::chrono::steady_clock::now() < end) io.run_one_for(50ms);
    if (!out) throw std::runtime_error("io timeout");
    return std::move(*out);
  }

  // Connects a client end of the pipe (the server instance may take a moment to appear).
  std::shared_ptr<Client> Connect() {
    for (int i = 0; i < 100; ++i) {
      io.poll();
      auto handle = OpenOverlappedFile(io.get_executor(), pipe_name);
      if (handle.ok()) {
        auto client = std::make_shared<Client>(std::move(handle).value());
        client->Start();
        return client;
      }
      std::this_thread::sleep_for(10ms);
      io.run_one_for(10ms);
    }
    return nullptr;
  }

  asio::io_context io;
  std::string pipe_name = UniquePipeName();
  std::shared_ptr<spdlog::logger> log;
  InProcessHold hold;
  ProviderStateMachine provider;
  FakeVss vss;
  VssRequester requester;
  FixedInventory inventory;
  std::unique_ptr<VssAgentService> service;
};

asio::awaitable<Result<proto::AgentMessage>> Request(std::shared_ptr<Client> client,
                                                     proto::AgentBody body) {
  co_return co_await client->Request(std::move(body), kWait);
}

template <typename T>
const T* BodyOf(const Result<proto::AgentMessage>& reply) {
  if (!reply.ok()) return nullptr;
  return std::get_if<T>(&reply->body);
}

TEST(NamedPipeTransport, CarriesAWholeFreezeThawSession) {
  PipeRig rig;
  auto client = rig.Connect();
  ASSERT_NE(client, nullptr) << "pipe never appeared";
  client->SetNonce(0x5eed);

  proto::Hello hello;
  hello.daemon_version = "test";
  hello.host_name = "host";
  auto reply = rig.Run(Request(client, hello));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto* hello_reply = BodyOf<proto::HelloReply>(reply);
  ASSERT_NE(hello_reply, nullptr);
  EXPECT_EQ(hello_reply->os.family, proto::OsFamily::kWindows);
  EXPECT_EQ(hello_reply->agent_version, "pipe-test");
  EXPECT_EQ(reply->nonce, 0x5eedu);

  reply = rig.Run(Request(client, proto::InventoryRequest{}));
  auto* inventory = BodyOf<proto::Inventory>(reply);
  ASSERT_NE(inventory, nullptr);
  EXPECT_EQ(inventory->volumes.size(), 2u);

  proto::Freeze freeze;
  freeze.job_id = "pipe-job";
  freeze.volumes = {FixedInventory::kDataVolume};
  freeze.mode = proto::FreezeMode::kVssFull;
  reply = rig.Run(Request(client, freeze));
  auto* frozen = BodyOf<proto::Frozen>(reply);
  ASSERT_NE(frozen, nullptr) << (reply.ok() ? proto::BodyName(reply->body) : "no reply");
  EXPECT_TRUE(rig.vss.writes_held());

  // Frozen mode: Inventory is refused, Status and Ping still answered.
  reply = rig.Run(Request(client, proto::InventoryRequest{}));
  auto* busy = BodyOf<proto::ErrorReply>(reply);
  ASSERT_NE(busy, nullptr);
  EXPECT_EQ(busy->code, proto::ErrorCode::kBusy);
  reply = rig.Run(Request(client, proto::StatusRequest{}));
  auto* status = BodyOf<proto::AgentStatus>(reply);
  ASSERT_NE(status, nullptr);
  EXPECT_TRUE(status->state.frozen);
  EXPECT_EQ(status->state.mode, proto::FreezeMode::kVssFull);
  reply = rig.Run(Request(client, proto::Ping{}));
  EXPECT_NE(BodyOf<proto::Pong>(reply), nullptr);

  reply = rig.Run(Request(client, proto::Thaw{"pipe-job", true}));
  auto* thawed = BodyOf<proto::Thawed>(reply);
  ASSERT_NE(thawed, nullptr);
  EXPECT_TRUE(thawed->held_whole_window) << thawed->not_held_reason;
  EXPECT_NE(thawed->backup_components_document.find("FULL"), std::string::npos);
  EXPECT_FALSE(rig.vss.writes_held());
  EXPECT_TRUE(rig.vss.violations().empty());
}

TEST(NamedPipeTransport, GarbageAndAnOldSessionsHalfFrameAreSkipped) {
  PipeRig rig;
  auto client = rig.Connect();
  ASSERT_NE(client, nullptr);
  // Half a frame of an old daemon plus line noise, as a serial port can hold.
  std::vector<std::uint8_t> junk = {'n', 'o', 'i', 's', 'e'};
  auto old = proto::EncodeFrame(proto::EncodeAgent(proto::AgentMessage{1, 77, proto::Ping{}}));
  junk.insert(junk.end(), old.begin(), old.begin() + static_cast<std::ptrdiff_t>(old.size() / 2));
  Status raw = rig.Run(client->channel().WriteRaw(junk));
  ASSERT_TRUE(raw.ok()) << raw.ToString();
  client->SetNonce(99);
  auto reply = rig.Run(Request(client, proto::Hello{}));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_NE(BodyOf<proto::HelloReply>(reply), nullptr);
  EXPECT_EQ(reply->nonce, 99u);
}

TEST(NamedPipeTransport, ServesSeveralClientsOneAfterAnother) {
  PipeRig rig;
  for (int i = 0; i < 3; ++i) {
    auto client = rig.Connect();
    ASSERT_NE(client, nullptr) << "client " << i;
    client->SetNonce(static_cast<std::uint64_t>(i + 1));
    auto reply = rig.Run(Request(client, proto::Hello{}));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    reply = rig.Run(Request(client, proto::Ping{}));
    EXPECT_NE(BodyOf<proto::Pong>(reply), nullptr);
    client->Close();
  }
}

TEST(VirtioPort, MissingPortIsNotFound) {
  asio::io_context io;
  auto port = OpenOverlappedFile(io.get_executor(), "\\\\.\\Global\\org.quiesce-bridge.nope.0");
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), Code::kNotFound) << port.status().ToString();
}

TEST(SocketAddresses, GuidRoundTripAndWindowsByteOrder) {
  auto g = ParseGuid("{00001176-facb-11e6-bd58-64006a7986d3}");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)[0], 0x76);  // Data1 little-endian
  EXPECT_EQ((*g)[3], 0x00);
  EXPECT_EQ((*g)[4], 0xcb);  // Data2 little-endian
  EXPECT_EQ((*g)[8], 0xbd);  // Data4 as written
  EXPECT_EQ(FormatGuid(*g), "00001176-facb-11e6-bd58-64006a7986d3");
  EXPECT_FALSE(ParseGuid("00001176-facb-11e6-bd58").ok());
  EXPECT_FALSE(ParseGuid("0000117g-facb-11e6-bd58-64006a7986d3").ok());
}

TEST(SocketAddresses, HyperVServiceIdFollowsTheVsockTemplate) {
  EXPECT_EQ(FormatGuid(HvServiceIdForPort(kDefaultVsockPort)),
            "00001176-facb-11e6-bd58-64006a7986d3");
  auto ep = HvSocketEndpoint(GuidBytes{}, HvServiceIdForPort(5));
  ASSERT_EQ(ep.size(), 36u);
  const auto* raw = reinterpret_cast<const std::uint8_t*>(ep.data());
  EXPECT_EQ(raw[0] | (raw[1] << 8), kAfHyperV);
  EXPECT_EQ(ep.protocol().family(), kAfHyperV);
  EXPECT_EQ(ep.protocol().protocol(), kHvProtocolRaw);
  for (int i = 4; i < 20; ++i) EXPECT_EQ(raw[i], 0) << "VmId wildcard byte " << i;
  EXPECT_EQ(raw[20], 5);  // ServiceId Data1 = port, little-endian
}

TEST(SocketAddresses, VsockEndpointLayout) {
  auto ep = VsockEndpoint(40, 0xffffffffu, kDefaultVsockPort);
  ASSERT_EQ(ep.size(), 16u);
  const auto* raw = reinterpret_cast<const std::uint8_t*>(ep.data());
  EXPECT_EQ(raw[0] | (raw[1] << 8), 40);
  EXPECT_EQ(raw[4] | (raw[5] << 8), static_cast<int>(kDefaultVsockPort));
  EXPECT_EQ(raw[8], 0xff);
  EXPECT_EQ(raw[11], 0xff);
  EXPECT_EQ(raw[12] | raw[13] | raw[14] | raw[15], 0);
}

TEST(SocketAddresses, HyperVListenerWorksOrSaysUnsupported) {
  // Wine has no AF_HYPERV: the listener must say so cleanly. On Hyper-V it listens (and would
  // run until cancelled: the io_context is stopped after one turn).
  asio::io_context io;
  auto log = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
  InProcessHold hold;
  ProviderStateMachine provider(hold);
  FakeVss vss({}, provider);
  VssRequester requester(vss, hold);
  FixedInventory inventory;
  VssAgentService service(io.get_executor(), requester, inventory, {});
  auto future = asio::co_spawn(
      io,
      ServeSocket(HvSocketEndpoint(GuidBytes{}, HvServiceIdForPort(kDefaultVsockPort)),
                  kHvProtocolRaw, service, log),
      asio::use_future);
  io.run_for(200ms);
  if (future.wait_for(0s) == std::future_status::ready) {
    Status s = future.get();
    EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
  }
}

}  // namespace
}  // namespace qb::agent::win
