// Whole messages over any Asio byte stream: a unix or vsock socket, a virtio-serial port fd
// (posix::stream_descriptor), a Windows handle later.
//
// Threading: a MessageStream and everything built on it must be used from one strand (or a
// single-threaded io_context). Read() may be outstanding at the same time as any number of
// Write() calls; writes are queued and go out whole, in order.
#pragma once

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/messages.h"

namespace qb::proto {

namespace asio = boost::asio;

// How each message type crosses the wire.
template <typename Message>
struct MessageCodec;

template <>
struct MessageCodec<AgentMessage> {
  static std::vector<std::uint8_t> Encode(const AgentMessage& m) { return EncodeAgent(m); }
  static Result<AgentMessage> Decode(std::span<const std::uint8_t> p, const CodecLimits& l) {
    return DecodeAgent(p, l);
  }
};
template <>
struct MessageCodec<ControlRequest> {
  static std::vector<std::uint8_t> Encode(const ControlRequest& m) {
    return EncodeControlRequest(m);
  }
  static Result<ControlRequest> Decode(std::span<const std::uint8_t> p, const CodecLimits& l) {
    return DecodeControlRequest(p, l);
  }
};
template <>
struct MessageCodec<ControlReply> {
  static std::vector<std::uint8_t> Encode(const ControlReply& m) { return EncodeControlReply(m); }
  static Result<ControlReply> Decode(std::span<const std::uint8_t> p, const CodecLimits& l) {
    return DecodeControlReply(p, l);
  }
};

// How much junk a stream takes before Read() gives up on it. The limits are checked as bytes
// arrive, so a peer that floods junk costs work bounded by these limits, not by how long the
// reader happens to wait for something else.
struct JunkLimit {
  // Bad frames + oversize frames + undecodable messages + messages the layer above rejected
  // (MessageStream::CountRejected()).
  std::uint64_t max_bad_messages = std::numeric_limits<std::uint64_t>::max();
  // Bytes skipped between frames while resynchronizing.
  std::uint64_t max_skipped_bytes = std::numeric_limits<std::uint64_t>::max();
};

// Reads messages of type In and writes messages of type Out on `Stream`.
template <typename Stream, typename In, typename Out>
class MessageStream {
 public:
  explicit MessageStream(Stream stream, CodecLimits limits = {}, JunkLimit junk_limit = {})
      : stream_(std::move(stream)),
        limits_(limits),
        junk_limit_(junk_limit),
        decoder_(limits.max_payload) {}

  Stream& stream() { return stream_; }
  const FrameDecoder::Stats& frame_stats() const { return decoder_.stats(); }
  // Frames whose CRC was right but whose content did not decode (counted, then skipped).
  std::uint64_t undecodable() const { return undecodable_; }
  const Status& last_decode_error() const { return last_decode_error_; }
  // The layer above read a message it cannot use (a stale or unmatched reply): it counts
  // against the junk limit like a bad frame. The next Read() fails if that passes the limit.
  void CountRejected() { ++rejected_; }
  std::uint64_t rejected() const { return rejected_; }
  // Bad frames + oversize frames + undecodable + rejected messages so far.
  std::uint64_t bad_messages() const {
    return decoder_.stats().bad_frames + decoder_.stats().oversize + undecodable_ + rejected_;
  }
  // What was wrong with the peer's bytes so far, for people: "" when nothing was, else e.g.
  // "3 undecodable messages, last: protocol-error: ...; 2 bad frames; 4096 bytes skipped".
  std::string JunkSummary() const {
    std::string out;
    auto add = [&out](std::uint64_t n, const std::string& what) {
      if (n == 0) return;
      if (!out.empty()) out += "; ";
      out += std::to_string(n) + " " + what;
    };
    if (undecodable_ > 0) {
      add(undecodable_, "undecodable message" + std::string(undecodable_ == 1 ? "" : "s") +
                            ", last: " + last_decode_error_.ToString());
    }
    add(decoder_.stats().bad_frames, "bad frames");
    add(decoder_.stats().oversize, "oversize frames");
    add(decoder_.stats().dropped_bytes, "bytes skipped");
    add(rejected_, "unexpected messages");
    return out;
  }

  // The next message that decodes. Bad bytes, bad frames and undecodable messages are skipped
  // and counted. Fails with kProtocolError ("too much junk ...", saying what) as soon as the
  // junk passes the JunkLimit, kGuestUnreachable at end of stream and kIoError / kCancelled on
  // read errors.
  asio::awaitable<Result<In>> Read() {
    for (;;) {
      if (auto over = OverJunkLimit(); !over.ok()) co_return over;
      while (auto payload = decoder_.Next()) {
        auto message = MessageCodec<In>::Decode(*payload, limits_);
        if (message.ok()) co_return std::move(message).value();
        ++undecodable_;
        last_decode_error_ = message.status();
        if (auto over = OverJunkLimit(); !over.ok()) co_return over;
      }
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(read_buf_),
                                                      asio::as_tuple(asio::use_awaitable));
      if (n > 0) decoder_.Feed(std::span<const std::uint8_t>(read_buf_.data(), n));
      if (ec) {
        if (n > 0) continue;  // deliver what arrived before the error first
        if (ec == asio::error::eof) co_return Error(Code::kGuestUnreachable, "end of stream");
        if (ec == asio::error::operation_aborted)
          co_return Error(Code::kCancelled, "read cancelled");
        co_return Error(Code::kIoError, "read: " + ec.message());
      }
    }
  }

  // Queues `message` and waits until it has been written whole (or the write failed).
  asio::awaitable<Status> Write(const Out& message) {
    auto item = std::make_shared<PendingWrite>(stream_.get_executor());
    AppendFrame(MessageCodec<Out>::Encode(message), item->bytes);
    queue_.push_back(item);
    if (!writing_) {
      writing_ = true;
      asio::co_spawn(stream_.get_executor(), DrainQueue(), asio::detached);
    }
    if (!item->done) co_await item->signal.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return item->status;
  }

  // Writes raw bytes as they are (tests use it to inject garbage and cut frames).
  asio::awaitable<Status> WriteRaw(std::vector<std::uint8_t> bytes) {
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes),
                                              asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec ? Error(Code::kIoError, "write: " + ec.message()) : Status::Ok();
  }

 private:
  Status OverJunkLimit() const {
    if (bad_messages() <= junk_limit_.max_bad_messages &&
        decoder_.stats().dropped_bytes <= junk_limit_.max_skipped_bytes) {
      return Status::Ok();
    }
    return Error(
        Code::kProtocolError,
        "too much junk from the peer (limits: " + std::to_string(junk_limit_.max_bad_messages) +
            " bad messages, " + std::to_string(junk_limit_.max_skipped_bytes) +
            " skipped bytes): " + JunkSummary());
  }

  struct PendingWrite {
    explicit PendingWrite(const typename Stream::executor_type& ex)
        : signal(ex, asio::steady_timer::time_point::max()) {}
    std::vector<std::uint8_t> bytes;
    asio::steady_timer signal;
    bool done = false;
    Status status;
  };

  asio::awaitable<void> DrainQueue() {
    while (!queue_.empty()) {
      auto item = queue_.front();
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(item->bytes),
                                                asio::as_tuple(asio::use_awaitable));
      (void)n;
      queue_.pop_front();
      if (ec) item->status = Error(Code::kIoError, "write: " + ec.message());
      item->done = true;
      item->signal.cancel();
    }
    writing_ = false;
  }

  Stream stream_;
  CodecLimits limits_;
  JunkLimit junk_limit_;
  FrameDecoder decoder_;
  std::array<std::uint8_t, 64 * 1024> read_buf_{};
  std::uint64_t undecodable_ = 0;
  std::uint64_t rejected_ = 0;
  Status last_decode_error_;
  std::deque<std::shared_ptr<PendingWrite>> queue_;
  bool writing_ = false;
};

// The daemon's side of an agent session: sends requests and matches replies by request id and
// session nonce. Replies from another session (stale nonce) and replies nobody waits for are
// dropped and counted (against `junk_limit`, with the channel's bad frames and undecodable
// messages: past it the session ends). Create with std::make_shared, then Start().
template <typename Stream>
class AgentClient : public std::enable_shared_from_this<AgentClient<Stream>> {
 public:
  using Channel = MessageStream<Stream, AgentMessage, AgentMessage>;

  explicit AgentClient(Stream stream, CodecLimits limits = {}, JunkLimit junk_limit = {})
      : channel_(std::move(stream), limits, junk_limit) {}

  // Called once, on the stream's executor, when the reader loop ends (end of stream, read
  // error, junk over the limit, or Close()), after every waiting request has failed. `why` is
  // the reason also kept in close_reason(). Set before Start().
  void SetOnClose(std::function<void(const Status& why)> on_close) {
    on_close_ = std::move(on_close);
  }

  // Starts the reader loop on the stream's executor. Call once.
  void Start() {
    asio::co_spawn(
        channel_.stream().get_executor(),
        [self = this->shared_from_this()]() { return self->ReadLoop(); }, asio::detached);
  }

  // The nonce carried by every later request; replies must echo it.
  void SetNonce(std::uint64_t nonce) { nonce_ = nonce; }
  std::uint64_t nonce() const { return nonce_; }

  // Sends `body` as a new request and waits for its reply. Fails with kTimeout when
  // `deadline` passes first, kCancelled after CancelAll(), kGuestUnreachable ("session
  // ended: ...") as soon as the stream ends or fails, even mid-wait. The reply may itself be an
  // ErrorReply: that is a successful round trip.
  asio::awaitable<Result<AgentMessage>> Request(AgentBody body,
                                                std::chrono::steady_clock::duration deadline) {
    if (!open_) co_return Error(Code::kGuestUnreachable, close_reason_);
    auto id = ++last_request_id_;
    auto pending = std::make_shared<PendingReply>(channel_.stream().get_executor());
    pending->timer.expires_after(deadline);
    pending_[id] = pending;
    // Named, not a temporary: g++ 12 destroys some temporaries inside co_await twice.
    const AgentMessage request{id, nonce_, std::move(body)};
    Status written = co_await channel_.Write(request);
    if (!written.ok()) {
      pending_.erase(id);
      co_return written;
    }
    if (!pending->result) {
      auto [ec] = co_await pending->timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (!pending->result) {
        pending_.erase(id);
        // The timer ran out (no error) or was cancelled without a result (Cancel()).
        if (!ec) co_return Error(Code::kTimeout, "no reply within the deadline");
        co_return Error(Code::kCancelled, "request cancelled");
      }
    }
    pending_.erase(id);
    co_return std::move(*pending->result);
  }

  // Fails every outstanding request at once with `why` (kCancelled by default); later
  // requests still work. The result is stored before the wake-up, so a request still writing
  // its frame fails as soon as the write ends instead of waiting out its deadline.
  void CancelAll(const Status& why = Error(Code::kCancelled, "request cancelled")) {
    for (auto& [id, p] : pending_) {
      if (!p->result) p->result = Result<AgentMessage>(why);
      p->timer.cancel();
    }
  }

  // Closes the stream: the reader loop ends and every outstanding request fails.
  void Close() {
    boost::system::error_code ignored;
    channel_.stream().close(ignored);
  }

  bool open() const { return open_; }
  const std::string& close_reason() const { return close_reason_; }
  std::uint64_t stale_replies() const { return stale_replies_; }
  std::uint64_t unmatched_replies() const { return unmatched_replies_; }
  const Channel& channel() const { return channel_; }
  Channel& channel() { return channel_; }

 private:
  struct PendingReply {
    explicit PendingReply(const typename Stream::executor_type& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<Result<AgentMessage>> result;
  };

  asio::awaitable<void> ReadLoop() {
    for (;;) {
      auto message = co_await channel_.Read();
      if (!message.ok()) {
        // The session is over: every request still waiting fails now with a clear reason,
        // never by running out its deadline.
        open_ = false;
        close_reason_ = "session ended: " + message.status().ToString();
        CancelAll(Error(Code::kGuestUnreachable, close_reason_));
        if (on_close_) on_close_(message.status());
        co_return;
      }
      if (message->nonce != nonce_) {
        ++stale_replies_;
        channel_.CountRejected();
        continue;
      }
      auto it = pending_.find(message->request_id);
      if (IsRequest(message->body) || it == pending_.end() || it->second->result) {
        ++unmatched_replies_;
        channel_.CountRejected();
        continue;
      }
      it->second->result = std::move(message);
      it->second->timer.cancel();
    }
  }

  Channel channel_;
  std::uint64_t nonce_ = 0;
  std::uint64_t last_request_id_ = 0;
  std::map<std::uint64_t, std::shared_ptr<PendingReply>> pending_;
  bool open_ = true;
  std::string close_reason_ = "closed";
  std::function<void(const Status&)> on_close_;
  std::uint64_t stale_replies_ = 0;
  std::uint64_t unmatched_replies_ = 0;
};

}  // namespace qb::proto
