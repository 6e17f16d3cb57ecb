// Golden bytes: every message, framed, as checked in under tests/golden/. A change to the wire
// format (schema layout, framing, codec) makes these fail; regenerate deliberately with
// QB_UPDATE_GOLDEN=1 only when the protocol version is bumped accordingly.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/testing/agent_next.capnp.h"
#include "protocol/testing/sample_messages.h"

namespace qb::proto {
namespace {

const std::filesystem::path kGoldenDir = QB_GOLDEN_DIR;

bool Updating() {
  const char* v = std::getenv("QB_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

std::vector<std::uint8_t> ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void CheckGolden(const std::string& name, const std::vector<std::uint8_t>& frame) {
  auto path = kGoldenDir / (name + ".frame");
  if (Updating()) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(frame.data()), static_cast<long>(frame.size()));
    return;
  }
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " missing (QB_UPDATE_GOLDEN=1 makes it)";
  EXPECT_EQ(ReadFile(path), frame) << "wire format of " << name << " changed";
}

// Decodes one golden frame file into its payload.
std::vector<std::uint8_t> PayloadOf(const std::string& name) {
  FrameDecoder d;
  d.Feed(ReadFile(kGoldenDir / (name + ".frame")));
  auto p = d.Next();
  EXPECT_TRUE(p.has_value()) << name;
  return p.value_or(std::vector<std::uint8_t>{});
}

TEST(Golden, AgentMessages) {
  for (const auto& [name, m] : testing::SampleAgentMessages()) {
    CheckGolden(name, EncodeFrame(EncodeAgent(m)));
    if (Updating()) continue;
    auto decoded = DecodeAgent(PayloadOf(name));
    ASSERT_TRUE(decoded.ok()) << name;
    EXPECT_EQ(*decoded, m) << name;
  }
}

// Control protocol 1.1 grew two structs: ControlRequest (page) and JobReport (truncated
// counts, writerDetails). The 1.0 bytes of those messages stay checked in under their old
// names and must still decode to the same values (a 1.0 client talking to this daemon);
// their current encoding is pinned under "<name>.v1_1". Every other message kept its bytes.
bool GrewIn11(const std::string& name) {
  static const std::set<std::string> kGrown = {
      "ctl_guests",   "ctl_status", "ctl_snapshot", "ctl_snapshots", "ctl_delete", "ctl_expose",
      "ctl_rollback", "ctl_prune",  "ctl_jobs",     "ctl_thaw",      "ctl_job",    "ctl_job_list"};
  return kGrown.contains(name);
}

TEST(Golden, ControlMessages) {
  for (const auto& [name, m] : testing::SampleControlRequests()) {
    CheckGolden(GrewIn11(name) ? name + ".v1_1" : name, EncodeFrame(EncodeControlRequest(m)));
  }
  for (const auto& [name, m] : testing::SampleControlReplies()) {
    CheckGolden(GrewIn11(name) ? name + ".v1_1" : name, EncodeFrame(EncodeControlReply(m)));
  }
}

TEST(Golden, ControlMessagesOf10StillDecode) {
  if (Updating()) GTEST_SKIP() << "the 1.0 files are never rewritten";
  for (const auto& [name, m] : testing::SampleControlRequests()) {
    if (name.ends_with("_v1_1")) continue;
    auto decoded = DecodeControlRequest(PayloadOf(name));
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, m) << name;
  }
  for (const auto& [name, m] : testing::SampleControlReplies()) {
    if (name.ends_with("_v1_1")) continue;
    auto decoded = DecodeControlReply(PayloadOf(name));
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, m) << name;
  }
}

// A Hello written by a future daemon (protocol 1.1, with fields this build does not know):
// it decodes, the known fields are intact and the version check accepts it.
std::vector<std::uint8_t> NewerHello(std::uint16_t major) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<wire::agent_next::Envelope>();
  env.setRequestId(1);
  env.setNonce(42);
  auto h = env.initBody().initHello();
  h.setProtocolMajor(major);
  h.setProtocolMinor(1);
  h.setDaemonVersion("quiesced 9.9");
  h.setHostName("future-host");
  h.setFeatureFlags(0xfeed);
  h.setNewText("something new");
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return EncodeFrame(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
}

TEST(Golden, HelloFromNewerMinorIsAccepted) {
  CheckGolden("hello_newer_minor", NewerHello(1));
  if (Updating()) return;
  auto decoded = DecodeAgent(PayloadOf("hello_newer_minor"));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto* hello = std::get_if<Hello>(&decoded->body);
  ASSERT_NE(hello, nullptr);
  EXPECT_EQ(hello->protocol_minor, 1);
  EXPECT_EQ(hello->host_name, "future-host");
  EXPECT_TRUE(CheckProtocolVersion(hello->protocol_major, hello->protocol_minor).ok());
}

TEST(Golden, HelloFromIncompatibleMajorIsRefused) {
  CheckGolden("hello_major_2", NewerHello(2));
  if (Updating()) return;
  auto decoded = DecodeAgent(PayloadOf("hello_major_2"));
  ASSERT_TRUE(decoded.ok());
  const auto& hello = std::get<Hello>(decoded->body);
  auto st = CheckProtocolVersion(hello.protocol_major, hello.protocol_minor);
  EXPECT_EQ(st.code(), Code::kVersionMismatch);
  EXPECT_NE(st.message().find("2.1"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace qb::proto

namespace qb::proto {
namespace {

TEST(Golden, UnknownMessageTypeIsAnErrorNotACrash) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<wire::agent_next::Envelope>();
  env.setRequestId(9);
  env.initBody().setFutureRequest("from the future");
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  auto r = DecodeAgent(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kProtocolError);
}

}  // namespace
}  // namespace qb::proto
