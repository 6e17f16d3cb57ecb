#include "host-daemon/cli/control_client.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "common/guest_text.h"
#include "host-daemon/cli/exit_codes.h"
#include "protocol/codec.h"
#include "protocol/crc32c.h"
#include "protocol/frame.h"

namespace qb::cli {
namespace {

using namespace std::chrono_literals;

// Longer than any of these tests needs: an answer that comes only at this bound is the old
// "no answer" wait, which is what the tests rule out.
constexpr auto kWait = 20s;

// A fake quiesced on a unix socket in a temp dir: accepts one client, reads its request
// frame, then does `act` with the connected fd. Joins and removes everything on destruction.
class FakeDaemon {
 public:
  explicit FakeDaemon(std::function<void(int fd)> act) {
    char templ[] = "/tmp/qb-cli-test-XXXXXX";
    EXPECT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
    path_ = dir_ + "/quiesced.sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_, 4), 0);
    thread_ = std::thread([this, act = std::move(act)] {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      proto::FrameDecoder decoder;
      std::uint8_t buf[4096];
      while (!decoder.Next()) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        decoder.Feed(std::span<const std::uint8_t>(buf, static_cast<std::size_t>(n)));
      }
      act(fd);
      ::close(fd);
    });
  }
  ~FakeDaemon() {
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  const std::string& path() const { return path_; }

  static void Send(int fd, const std::vector<std::uint8_t>& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

 private:
  std::string dir_, path_;
  int listener_ = -1;
  std::thread thread_;
};

proto::SnapshotRequest SnapshotOf(const std::string& vm) {
  proto::SnapshotRequest r;
  r.vms = {vm};
  return r;
}

proto::ControlRequest Request(proto::ControlRequestBody body) {
  return proto::ControlRequest{1, proto::kControlProtocolMajor, std::move(body)};
}

TEST(ControlClient, AnUndecodableReplyIsAnErrorAtOnceForEveryVerb) {
  const std::vector<proto::ControlRequestBody> verbs = {proto::ListGuests{},
                                                        proto::GuestStatusRequest{"vm1"},
                                                        SnapshotOf("vm1"),
                                                        proto::ListSnapshots{""},
                                                        proto::DeleteSnapshot{"s"},
                                                        proto::ExposeRequest{"s", "n"},
                                                        proto::RollbackRequest{"vm1", "s"},
                                                        proto::PruneRequest{""},
                                                        proto::ListJobs{},
                                                        proto::ThawRequest{"vm1"}};
  for (const auto& body : verbs) {
    FakeDaemon daemon([](int fd) {
      // A frame with a correct CRC whose payload is not a Cap'n Proto message; then the
      // connection stays open (a daemon that goes on) until the client leaves.
      FakeDaemon::Send(fd, proto::EncodeFrame(std::vector<std::uint8_t>(64, 0xFF)));
      std::uint8_t b;
      while (::read(fd, &b, 1) > 0) {
      }
    });
    auto reply = Ask(daemon.path(), Request(body), kWait);
    ASSERT_FALSE(reply.ok()) << "verb " << body.index();
    ASSERT_EQ(reply.status().code(), Code::kProtocolError) << reply.status().ToString();
    EXPECT_NE(reply.status().message().find("cannot be read"), std::string::npos);
  }
}

TEST(ControlClient, AReplyOverTheSizeLimitIsAnErrorAtOnce) {
  FakeDaemon daemon([](int fd) {
    // A header claiming 14 MB (as the unbounded job list did), then part of it.
    std::vector<std::uint8_t> frame = proto::EncodeFrame(std::vector<std::uint8_t>(8, 0));
    std::uint32_t len = 14u << 20;
    std::memcpy(frame.data() + 8, &len, 4);
    std::uint32_t hcrc = proto::Crc32c(std::span<const std::uint8_t>(frame.data(), 16));
    std::memcpy(frame.data() + 16, &hcrc, 4);
    frame.resize(proto::kFrameHeaderSize);
    frame.resize(64 * 1024, 0x41);
    FakeDaemon::Send(fd, frame);
    std::uint8_t b;
    while (::read(fd, &b, 1) > 0) {
    }
  });
  auto reply = Ask(daemon.path(), Request(proto::ListJobs{}), kWait);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().code(), Code::kTimeout) << reply.status().ToString();
}

TEST(ControlClient, ADaemonThatDiesMidRequestIsNotAGuestFailure) {
  FakeDaemon daemon([](int) {});  // reads the request, then closes
  auto reply = Ask(daemon.path(), Request(proto::ListGuests{}), kWait);
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.status().code(), Code::kGuestUnreachable) << reply.status().ToString();
  EXPECT_EQ(reply.status().code(), Code::kIoError) << reply.status().ToString();
  EXPECT_NE(reply.status().message().find("quiesced went away"), std::string::npos)
      << reply.status().ToString();
  EXPECT_EQ(reply.status().message().find("outcome is unknown"), std::string::npos);
}

TEST(ControlClient, ASnapshotLostWithTheDaemonSaysItsOutcomeIsUnknown) {
  FakeDaemon daemon([](int) {});
  auto reply = Ask(daemon.path(), Request(SnapshotOf("vm1")), kWait);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kIoError) << reply.status().ToString();
  EXPECT_NE(reply.status().message().find("outcome is unknown"), std::string::npos);
  EXPECT_NE(reply.status().message().find("quiescectl jobs"), std::string::npos);
}

TEST(ControlClient, AGoodReplyIsReturned) {
  FakeDaemon daemon([](int fd) {
    FakeDaemon::Send(fd, proto::EncodeFrame(proto::EncodeControlReply(
                             proto::ControlReply{1, proto::Done{"ok"}, true, 7})));
  });
  auto reply = Ask(daemon.path(), Request(proto::ListJobs{}), kWait);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(std::get<proto::Done>(reply->body).what, "ok");
  EXPECT_TRUE(reply->more);
  EXPECT_EQ(reply->next_offset, 7u);
}

TEST(ControlClient, NoDaemonIsAnIoErrorNotAGuestFailure) {
  auto reply = Ask("/nonexistent/qb/quiesced.sock", Request(proto::ListGuests{}), kWait);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kIoError);
}

// Issue 11 item 3: guest texts (agent version, OS name, job ids, writer names and states,
// not-covered volumes, errors) with terminal escapes, a forged line, invalid UTF-8, bidi
// overrides and 12 KB reach quiescectl's text and --json output only escaped and capped.
std::string Hostile() {
  return "v1\x1b]0;owned\x07\r\nsnapshot X application-consistent\n\xff\xc3\xe2\x80\xae\xc2\x9b" +
         std::string(12 * 1024, 'A');  // under the codec's 16 KiB per text (the agent codec's too)
}

proto::ControlReply HostileReply(const proto::ControlRequest& request) {
  proto::GuestInfo guest;
  guest.name = "vm1";
  guest.link_state = "down";
  guest.agent_version = Hostile();
  guest.os_name = Hostile();
  guest.frozen = true;
  guest.frozen_job_id = Hostile();
  guest.last_error = Hostile();
  proto::JobReport job;
  job.job_id = "j1";
  job.state = "failed";
  job.error = Hostile();
  job.not_covered = {Hostile()};
  job.writers = {Hostile()};
  job.writer_details = {{"vm1", Hostile(), proto::WriterPhase::kFreeze, false, Hostile()}};
  if (std::holds_alternative<proto::ListGuests>(request.body))
    return proto::ControlReply{request.request_id, proto::GuestList{{guest}}};
  return proto::ControlReply{request.request_id, proto::JobList{{job}}};
}

class CliOutputTest : public ::testing::TestWithParam<const char*> {};

TEST_P(CliOutputTest, GuestTextIsEscapedAndCapped) {
  const std::string verb = GetParam();
  const bool as_json = verb.find("--json") != std::string::npos;
  proto::ControlRequest asked{1, 1,
                              verb.find("guests") != std::string::npos
                                  ? proto::ControlRequestBody(proto::ListGuests{})
                                  : proto::ControlRequestBody(proto::ListJobs{})};
  FakeDaemon daemon([asked](int fd) {
    FakeDaemon::Send(fd, proto::EncodeFrame(proto::EncodeControlReply(HostileReply(asked))));
  });
  const std::string cmd = std::string(QB_QUIESCECTL) + " --socket " + daemon.path() + " " + verb;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ::pclose(pipe);
  ASSERT_NE(out.find("]0;owned"), std::string::npos) << "no reply shown: " << out.substr(0, 200);
  EXPECT_TRUE(IsValidUtf8(out));
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "an ESC reached the terminal";
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(out.find("\xe2\x80\xae"), std::string::npos) << "a bidi override was shown raw";
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos) << "a C1 CSI was shown raw";
  std::size_t start = 0;
  while (start < out.size()) {
    std::size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    const std::string line = out.substr(start, end - start);
    EXPECT_NE(line.rfind("snapshot X", 0), 0u) << "a forged line: " << line.substr(0, 80);
    EXPECT_LT(line.size(), (as_json ? 16 : 6) * (kGuestTextMaxBytes + 64)) << "not capped";
    start = end + 1;
  }
  if (as_json) {
    boost::system::error_code ec;
    auto doc = boost::json::parse(out, ec);
    EXPECT_FALSE(ec) << ec.message();
  }
}

INSTANTIATE_TEST_SUITE_P(Verbs, CliOutputTest,
                         ::testing::Values("guests", "--json guests", "jobs", "--json jobs"));

}  // namespace
}  // namespace qb::cli
