#include "protocol/message_stream.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <optional>

namespace qb::proto {
namespace {

using Socket = asio::local::stream_protocol::socket;
using namespace std::chrono_literals;

struct Pair {
  asio::io_context io;
  Socket a{io};
  Socket b{io};
  Pair() { asio::local::connect_pair(a, b); }
};

// Runs `body` to completion on `io` and fails the test if it does not finish in `limit`.
template <typename Fn>
void RunCoro(asio::io_context& io, Fn body, std::chrono::seconds limit = 10s) {
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await body();
        finished = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run_for(limit);
  EXPECT_TRUE(finished) << "coroutine did not finish";
}

// A scripted peer: answers each request with `reply(request)`, or nothing if it returns nullopt.
template <typename Fn>
asio::awaitable<void> Responder(MessageStream<Socket, AgentMessage, AgentMessage>& peer, Fn reply) {
  for (;;) {
    auto m = co_await peer.Read();
    if (!m.ok()) co_return;
    auto r = reply(*m);
    if (r) co_await peer.Write(*r);
  }
}

TEST(MessageStream, WholeMessagesBothWays) {
  Pair p;
  MessageStream<Socket, AgentMessage, AgentMessage> x(std::move(p.a)), y(std::move(p.b));
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    AgentMessage m{7, 99, Freeze{"job", {"/mnt/a"}, false, FreezeMode::kFsfreeze, 1000}};
    EXPECT_TRUE((co_await x.Write(m)).ok());
    auto got = co_await y.Read();
    EXPECT_TRUE(got.ok());
    if (got.ok()) {
      EXPECT_EQ(*got, m);
    }
  });
}

TEST(MessageStream, GarbageAndUndecodableFramesAreSkipped) {
  Pair p;
  MessageStream<Socket, AgentMessage, AgentMessage> x(std::move(p.a)), y(std::move(p.b));
  // Built outside the coroutine: g++ 12 cannot keep an initializer_list in a coroutine frame.
  const std::vector<std::uint8_t> noise = {'n', 'o', 'i', 's', 'e', 0xD1, 0x51};
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    co_await x.WriteRaw(noise);
    // A valid frame whose payload is not a message.
    co_await x.WriteRaw(EncodeFrame(std::vector<std::uint8_t>(16, 0xAB)));
    AgentMessage m{1, 2, Ping{}};
    co_await x.Write(m);
    auto got = co_await y.Read();
    EXPECT_TRUE(got.ok());
    if (got.ok()) {
      EXPECT_EQ(*got, m);
    }
    EXPECT_EQ(y.undecodable(), 1u);
    EXPECT_GT(y.frame_stats().dropped_bytes, 0u);
  });
}

TEST(MessageStream, EndOfStreamIsGuestUnreachable) {
  Pair p;
  MessageStream<Socket, AgentMessage, AgentMessage> y(std::move(p.b));
  p.a.close();
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto got = co_await y.Read();
    EXPECT_EQ(got.status().code(), Code::kGuestUnreachable);
  });
}

// A peer that floods junk and never sends a valid message: Read() gives up as soon as the
// junk passes the limit, saying what it saw, instead of decoding for as long as the reader
// waits. The flood is endless, so without the limit this test never finishes.
TEST(MessageStream, JunkOverTheLimitEndsReadWhileBytesArrive) {
  struct Case {
    const char* name;
    std::vector<std::uint8_t> chunk;
    const char* expect;
  };
  std::vector<std::uint8_t> undecodable;
  for (int i = 0; i < 64; ++i) AppendFrame(std::vector<std::uint8_t>(16, 0xAB), undecodable);
  const std::vector<Case> cases = {
      {"garbage", std::vector<std::uint8_t>(64 * 1024, 0x5A), "bytes skipped"},
      {"undecodable", undecodable, "undecodable messages, last: "},
  };
  for (const auto& c : cases) {
    Pair p;
    MessageStream<Socket, AgentMessage, AgentMessage> x(std::move(p.a));
    MessageStream<Socket, AgentMessage, AgentMessage> y(std::move(p.b), {},
                                                        JunkLimit{100, 256 * 1024});
    bool reader_done = false;
    Status read_status;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
          while (!reader_done) {
            if (!(co_await x.WriteRaw(c.chunk)).ok()) co_return;
          }
        },
        asio::detached);
    RunCoro(p.io, [&]() -> asio::awaitable<void> {
      auto got = co_await y.Read();
      reader_done = true;
      read_status = got.status();
      y.stream().close();
    });
    EXPECT_EQ(read_status.code(), Code::kProtocolError) << c.name << ": " << read_status.ToString();
    EXPECT_NE(read_status.message().find("too much junk"), std::string::npos) << c.name;
    EXPECT_NE(read_status.message().find(c.expect), std::string::npos)
        << c.name << ": " << read_status.ToString();
    EXPECT_GT(y.bad_messages() + y.frame_stats().dropped_bytes, 0u) << c.name;
  }
}

TEST(MessageStream, JunkSummarySaysWhatWasWrong) {
  Pair p;
  MessageStream<Socket, AgentMessage, AgentMessage> x(std::move(p.a)), y(std::move(p.b));
  EXPECT_EQ(y.JunkSummary(), "");
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      co_await x.WriteRaw(EncodeFrame(std::vector<std::uint8_t>(16, 0xAB)));
    }
    AgentMessage m{1, 2, Ping{}};
    co_await x.Write(m);
    auto got = co_await y.Read();
    EXPECT_TRUE(got.ok());
  });
  EXPECT_EQ(y.undecodable(), 3u);
  EXPECT_EQ(y.JunkSummary().rfind("3 undecodable messages, last: protocol-error", 0), 0u)
      << y.JunkSummary();
}

TEST(AgentClient, MatchesRepliesByIdAndNonce) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->SetNonce(555);
  client->Start();
  MessageStream<Socket, AgentMessage, AgentMessage> agent(std::move(p.b));
  asio::co_spawn(
      p.io,
      Responder(
          agent,
          [](const AgentMessage& req) {
            return std::optional<AgentMessage>(AgentMessage{req.request_id, req.nonce, Pong{123}});
          }),
      asio::detached);
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      auto r = co_await client->Request(Ping{}, 5s);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) {
        EXPECT_EQ(std::get<Pong>(r->body).guest_monotonic_ns, 123u);
      }
    }
    client->Close();
  });
}

TEST(AgentClient, StaleNonceReplyIsDiscardedThenDeadline) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->SetNonce(2);
  client->Start();
  MessageStream<Socket, AgentMessage, AgentMessage> agent(std::move(p.b));
  asio::co_spawn(
      p.io,
      Responder(agent,
                [](const AgentMessage& req) {
                  // Answers as if for the previous daemon's session.
                  return std::optional<AgentMessage>(AgentMessage{req.request_id, 1, Pong{1}});
                }),
      asio::detached);
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto r = co_await client->Request(Ping{}, 300ms);
    EXPECT_EQ(r.status().code(), Code::kTimeout);
    EXPECT_EQ(client->stale_replies(), 1u);
    client->Close();
  });
}

TEST(AgentClient, UnansweredRequestTimesOut) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->Start();
  MessageStream<Socket, AgentMessage, AgentMessage> agent(std::move(p.b));
  asio::co_spawn(
      p.io, Responder(agent, [](const AgentMessage&) { return std::optional<AgentMessage>(); }),
      asio::detached);
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto t0 = std::chrono::steady_clock::now();
    auto r = co_await client->Request(Ping{}, 200ms);
    EXPECT_EQ(r.status().code(), Code::kTimeout);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
    client->Close();
  });
}

TEST(AgentClient, CancelAllFailsOutstandingRequests) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->Start();
  MessageStream<Socket, AgentMessage, AgentMessage> agent(std::move(p.b));
  asio::steady_timer later(p.io);
  later.expires_after(50ms);
  later.async_wait([&](auto) { client->CancelAll(); });
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto r = co_await client->Request(Ping{}, 30s);
    EXPECT_EQ(r.status().code(), Code::kCancelled);
    client->Close();
  });
}

TEST(AgentClient, PeerClosingFailsOutstandingRequests) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->Start();
  asio::steady_timer later(p.io);
  later.expires_after(50ms);
  later.async_wait([&](auto) { p.b.close(); });
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto r = co_await client->Request(Ping{}, 30s);
    EXPECT_EQ(r.status().code(), Code::kGuestUnreachable);
    auto again = co_await client->Request(Ping{}, 30s);
    EXPECT_EQ(again.status().code(), Code::kGuestUnreachable);
  });
}

TEST(AgentClient, PeerClosingMidWaitFailsAtOnceWithSessionEnded) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->Start();
  asio::steady_timer later(p.io);
  later.expires_after(50ms);
  later.async_wait([&](auto) { p.b.close(); });
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto t0 = std::chrono::steady_clock::now();
    auto r = co_await client->Request(Ping{}, 5s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_EQ(r.status().code(), Code::kGuestUnreachable);
    EXPECT_NE(r.status().message().find("session ended"), std::string::npos)
        << r.status().ToString();
    EXPECT_FALSE(client->open());
  });
}

// CancelAll while the request is still being written (the peer reads nothing yet): the
// request fails with CancelAll's status as soon as its write ends, not at its deadline.
TEST(AgentClient, CancelAllDuringTheWriteFailsAtOnceWithItsStatus) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->Start();
  Hello big;
  big.host_name = std::string(4 << 20, 'h');  // far more than the socket buffer holds
  std::array<char, 64 * 1024> sink{};
  std::function<void()> drain = [&] {
    p.b.async_read_some(asio::buffer(sink), [&](boost::system::error_code ec, std::size_t) {
      if (!ec) drain();
    });
  };
  asio::steady_timer later(p.io);
  later.expires_after(100ms);
  later.async_wait([&](auto) {
    client->CancelAll(Error(Code::kGuestUnreachable, "session ended: test"));
    drain();  // now the write can finish
  });
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto t0 = std::chrono::steady_clock::now();
    auto r = co_await client->Request(big, 3s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_EQ(r.status().code(), Code::kGuestUnreachable) << r.status().ToString();
    EXPECT_EQ(r.status().message(), "session ended: test");
    client->Close();
    p.b.close();
  });
}

TEST(AgentClient, WrongIdAndRequestShapedRepliesAreIgnored) {
  Pair p;
  auto client = std::make_shared<AgentClient<Socket>>(std::move(p.a));
  client->SetNonce(9);
  client->Start();
  MessageStream<Socket, AgentMessage, AgentMessage> agent(std::move(p.b));
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    asio::co_spawn(
        co_await asio::this_coro::executor,
        [&]() -> asio::awaitable<void> {
          auto req = co_await agent.Read();
          if (!req.ok()) co_return;
          const AgentMessage wrong_id{req->request_id + 100, 9, Pong{1}};
          const AgentMessage request_shaped{req->request_id, 9, Freeze{"x", {}, true, {}, 0}};
          const AgentMessage right{req->request_id, 9, Pong{2}};
          co_await agent.Write(wrong_id);
          co_await agent.Write(request_shaped);
          co_await agent.Write(right);
        },
        asio::detached);
    auto r = co_await client->Request(Ping{}, 5s);
    EXPECT_TRUE(r.ok());
    if (r.ok()) {
      EXPECT_EQ(std::get<Pong>(r->body).guest_monotonic_ns, 2u);
    }
    EXPECT_EQ(client->unmatched_replies(), 2u);
    client->Close();
  });
}

// Replies the client cannot use count against the junk limit: a peer flooding unsolicited
// replies ends the session, and the close callback hears why, after the waiting request failed.
TEST(AgentClient, UnexpectedRepliesPastTheLimitEndTheSessionAndTellTheOwner) {
  Pair p;
  MessageStream<Socket, AgentMessage, AgentMessage> peer(std::move(p.b));
  auto client =
      std::make_shared<AgentClient<Socket>>(std::move(p.a), CodecLimits{}, JunkLimit{10, 1024});
  std::optional<Status> closed_with;
  client->SetOnClose([&](const Status& why) { closed_with = why; });
  client->SetNonce(5);
  client->Start();
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    std::vector<std::uint8_t> flood;
    for (std::uint64_t i = 0; i < 20; ++i) {
      AppendFrame(EncodeAgent(AgentMessage{1000 + i, 5, Pong{}}), flood);
    }
    co_await peer.WriteRaw(flood);
    auto reply = co_await client->Request(Ping{}, 30s);
    EXPECT_EQ(reply.status().code(), Code::kGuestUnreachable) << reply.status().ToString();
    EXPECT_NE(reply.status().message().find("too much junk"), std::string::npos)
        << reply.status().ToString();
  });
  ASSERT_TRUE(closed_with.has_value());
  EXPECT_EQ(closed_with->code(), Code::kProtocolError);
  EXPECT_NE(closed_with->message().find("unexpected messages"), std::string::npos)
      << closed_with->ToString();
  EXPECT_FALSE(client->open());
}

TEST(MessageStream, ConcurrentWritesGoOutWholeAndInOrder) {
  Pair p;
  MessageStream<Socket, AgentMessage, AgentMessage> x(std::move(p.a)), y(std::move(p.b));
  constexpr int kCount = 50;
  RunCoro(p.io, [&]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    for (int i = 0; i < kCount; ++i) {
      asio::co_spawn(
          ex,
          [&x, i]() -> asio::awaitable<void> {
            ErrorReply big{ErrorCode::kUnknown,
                           std::string(10000, static_cast<char>('a' + i % 26))};
            const AgentMessage m{static_cast<std::uint64_t>(i), 0, big};
            co_await x.Write(m);
          },
          asio::detached);
    }
    for (int i = 0; i < kCount; ++i) {
      auto m = co_await y.Read();
      EXPECT_TRUE(m.ok());
      if (!m.ok()) co_return;
      EXPECT_EQ(m->request_id, static_cast<std::uint64_t>(i));
    }
    EXPECT_EQ(y.frame_stats().bad_frames, 0u);
  });
}

}  // namespace
}  // namespace qb::proto
