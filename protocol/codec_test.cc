#include "protocol/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include "protocol/agent.capnp.h"
#include "protocol/testing/sample_messages.h"

namespace qb::proto {
namespace {

TEST(Codec, EveryAgentMessageRoundTrips) {
  auto samples = testing::SampleAgentMessages();
  ASSERT_EQ(samples.size(), std::variant_size_v<AgentBody>);
  for (const auto& [name, message] : samples) {
    auto decoded = DecodeAgent(EncodeAgent(message));
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, message) << name;
  }
}

TEST(Codec, EveryControlMessageRoundTrips) {
  for (const auto& [name, message] : testing::SampleControlRequests()) {
    auto decoded = DecodeControlRequest(EncodeControlRequest(message));
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, message) << name;
  }
  for (const auto& [name, message] : testing::SampleControlReplies()) {
    auto decoded = DecodeControlReply(EncodeControlReply(message));
    ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, message) << name;
  }
}

TEST(Codec, EmptyAndMisalignedPayloadsAreErrors) {
  EXPECT_EQ(DecodeAgent({}).status().code(), Code::kProtocolError);
  std::vector<std::uint8_t> odd(13, 0);
  EXPECT_EQ(DecodeAgent(odd).status().code(), Code::kProtocolError);
}

TEST(Codec, GarbageIsAnErrorNotAnException) {
  std::vector<std::uint8_t> garbage(64);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 37);
  auto r = DecodeAgent(garbage);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kProtocolError);
}

TEST(Codec, TruncatedMessageIsAnError) {
  auto bytes = EncodeAgent(testing::SampleAgentMessages()[1].second);
  for (std::size_t keep = 8; keep < bytes.size(); keep += 8) {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(keep));
    auto r = DecodeAgent(cut);
    EXPECT_FALSE(r.ok()) << "kept " << keep << " of " << bytes.size();
  }
}

TEST(Codec, OverlongTextIsRefused) {
  AgentMessage m{1, 2, ErrorReply{ErrorCode::kInternal, std::string(20000, 'x')}};
  auto r = DecodeAgent(EncodeAgent(m));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("error.message"), std::string::npos) << r.status().ToString();
  CodecLimits roomy;
  roomy.max_text = 32 * 1024;
  EXPECT_TRUE(DecodeAgent(EncodeAgent(m), roomy).ok());
}

TEST(Codec, OverlongJobIdIsRefused) {
  AgentMessage m{1, 2, Thaw{std::string(65, 'j'), true}};
  EXPECT_FALSE(DecodeAgent(EncodeAgent(m)).ok());
}

TEST(Codec, TooManyListElementsAreRefused) {
  Inventory inv;
  inv.disks.resize(5000);
  AgentMessage m{1, 2, inv};
  auto r = DecodeAgent(EncodeAgent(m));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("disks"), std::string::npos);
}

TEST(Codec, UnknownFreezeModeIsRefusedNotDefaulted) {
  capnp::MallocMessageBuilder builder;
  auto env = builder.initRoot<wire::agent::Envelope>();
  auto f = env.initBody().initFreeze();
  f.setJobId("j");
  f.setMode(static_cast<wire::agent::FreezeMode>(7));
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  auto r = DecodeAgent(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
  EXPECT_FALSE(r.ok());
}

TEST(Codec, PointerLoopHitsTraversalLimit) {
  // A segment whose root pointer points to itself forever: a classic amplification attack.
  std::vector<std::uint8_t> msg = {
      0,    0,    0,    0,    2, 0, 0, 0,  // 1 segment, 2 words
      0xfc, 0xff, 0xff, 0xff, 0, 0, 1, 0,  // root: struct ptr offset -1 (itself), 1 ptr
      0xfc, 0xff, 0xff, 0xff, 0, 0, 1, 0,  // same again
  };
  auto r = DecodeAgent(msg);
  EXPECT_FALSE(r.ok());
}

// An honest agent can cut a hook's output mid-character; a Frozen must never be refused for
// it (the guest would stay frozen until its lease). Every text comes out valid UTF-8.
TEST(Codec, InvalidUtf8FromTheGuestIsRepairedNotRejected) {
  Frozen frozen;
  frozen.job_id = "job-1";
  frozen.frozen_volumes = {"/data\xff"};
  frozen.skipped_volumes = {{"/x\xc3", "no \xe2\x82"}};
  WriterResult w;
  w.name = "10-db\xc0\xaf";
  w.state = "exit 0";
  w.output = "cut \xe2\x82";
  w.phase = "freeze";
  frozen.writers = {w};
  auto decoded = DecodeAgent(EncodeAgent(AgentMessage{1, 2, frozen}));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const auto& f = std::get<Frozen>(decoded->body);
  EXPECT_EQ(f.frozen_volumes[0], "/data\xEF\xBF\xBD");
  EXPECT_EQ(f.skipped_volumes[0].volume, "/x\xEF\xBF\xBD");
  EXPECT_EQ(f.writers[0].name, "10-db\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(f.writers[0].output, "cut \xEF\xBF\xBD\xEF\xBF\xBD");
  auto error =
      DecodeAgent(EncodeAgent(AgentMessage{1, 2, ErrorReply{ErrorCode::kInternal, "\x80"}}));
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(std::get<ErrorReply>(error->body).message, "\xEF\xBF\xBD");
}

TEST(Codec, ProtocolVersionRules) {
  EXPECT_TRUE(CheckProtocolVersion(kAgentProtocolMajor, kAgentProtocolMinor).ok());
  EXPECT_TRUE(CheckProtocolVersion(kAgentProtocolMajor, kAgentProtocolMinor + 5).ok());
  auto bad = CheckProtocolVersion(kAgentProtocolMajor + 1, 0);
  EXPECT_EQ(bad.code(), Code::kVersionMismatch);
  EXPECT_NE(bad.message().find("major"), std::string::npos);
}

}  // namespace
}  // namespace qb::proto
