// The real quiesce-agent.exe under Wine, driven over a named pipe by the daemon-side client:
// real Windows inventory (Wine's drives), the real VSS seam (absent under Wine: a Freeze must
// come back as an `unsupported` error with nothing left frozen), Status, Ping.
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <optional>
#include <thread>

#include "common/time_limits.h"
#include "guest-agent/windows/transports_win.h"
#include "protocol/message_stream.h"

namespace qb::agent::win {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Client = proto::AgentClient<asio::windows::stream_handle>;
constexpr auto kWait = std::chrono::milliseconds(limits::kRequestTimeout);

// Owns the child process; terminates it when the test ends, also on failure.
class AgentProcess {
 public:
  explicit AgentProcess(const std::string& pipe) {
    std::string exe = "Z:" + std::string(QB_AGENT_EXE);
    for (char& c : exe) c = c == '/' ? '\\' : c;
    std::string cmd =
        "\"" + exe + "\" --console --no-virtio --no-register --log-level debug --pipe " + pipe;
    STARTUPINFOA si{};
    si.cb = sizeof si;
    started_ = CreateProcessA(nullptr, cmd.data(), nullptr, nullptr, FALSE, 0, nullptr, nullptr,
                              &si, &pi_) != 0;
  }
  ~AgentProcess() {
    if (!started_) return;
    TerminateProcess(pi_.hProcess, 0);
    WaitForSingleObject(pi_.hProcess, static_cast<DWORD>(kWait.count()));
    CloseHandle(pi_.hThread);
    CloseHandle(pi_.hProcess);
  }
  bool started() const { return started_; }
  bool running() const { return started_ && WaitForSingleObject(pi_.hProcess, 0) == WAIT_TIMEOUT; }

 private:
  PROCESS_INFORMATION pi_{};
  bool started_ = false;
};

template <typename T>
T RunOn(asio::io_context& io, asio::awaitable<T> work) {
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

asio::awaitable<Result<proto::AgentMessage>> Request(std::shared_ptr<Client> c,
                                                     proto::AgentBody b) {
  co_return co_await c->Request(std::move(b), kWait);
}

TEST(AgentProcess, ServesARealSessionAndRefusesFreezeWithoutVss) {
  const std::string pipe = "\\\\.\\pipe\\qb-agent-e2e-" + std::to_string(GetCurrentProcessId());
  AgentProcess agent(pipe);
  ASSERT_TRUE(agent.started());
  asio::io_context io;
  std::shared_ptr<Client> client;
  for (int i = 0; i < 200 && !client; ++i) {
    auto handle = OpenOverlappedFile(io.get_executor(), pipe);
    if (handle.ok()) {
      client = std::make_shared<Client>(std::move(handle).value());
    } else {
      ASSERT_TRUE(agent.running()) << "the agent exited";
      std::this_thread::sleep_for(25ms);
    }
  }
  ASSERT_NE(client, nullptr) << "the agent's pipe never appeared";
  client->Start();
  client->SetNonce(0xabc);

  auto reply = RunOn(io, Request(client, proto::Hello{}));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto* hello = std::get_if<proto::HelloReply>(&reply->body);
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->os.family, proto::OsFamily::kWindows);
  EXPECT_FALSE(hello->os.version.empty());
  EXPECT_FALSE(hello->freeze_state.frozen);

  reply = RunOn(io, Request(client, proto::InventoryRequest{}));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto* inventory = std::get_if<proto::Inventory>(&reply->body);
  ASSERT_NE(inventory, nullptr) << proto::BodyName(reply->body);
  ASSERT_FALSE(inventory->volumes.empty()) << "Wine has at least C:";
  bool has_c = false;
  for (const auto& v : inventory->volumes) {
    for (const auto& m : v.mount_points) has_c = has_c || m == "C:\\";
  }
  EXPECT_TRUE(has_c);

  proto::Freeze freeze;
  freeze.job_id = "e2e";
  freeze.all_volumes = true;
  freeze.mode = proto::FreezeMode::kVssCopy;
  reply = RunOn(io, Request(client, freeze));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  auto* error = std::get_if<proto::ErrorReply>(&reply->body);
  ASSERT_NE(error, nullptr) << "a freeze cannot succeed without VSS: "
                            << proto::BodyName(reply->body);
  // Wine's C: is NTFS, so the freeze reaches VSS, which Wine does not have (E_NOTIMPL).
  EXPECT_EQ(error->code, proto::ErrorCode::kUnsupported) << error->message;
  EXPECT_NE(error->message.find("CreateVssBackupComponents"), std::string::npos) << error->message;

  reply = RunOn(io, Request(client, proto::StatusRequest{}));
  ASSERT_TRUE(reply.ok());
  auto* status = std::get_if<proto::AgentStatus>(&reply->body);
  ASSERT_NE(status, nullptr);
  EXPECT_FALSE(status->state.frozen);
  reply = RunOn(io, Request(client, proto::Ping{}));
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(std::holds_alternative<proto::Pong>(reply->body));
  EXPECT_TRUE(agent.running());
  client->Close();
}

}  // namespace
}  // namespace qb::agent::win
