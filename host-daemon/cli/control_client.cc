#include "host-daemon/cli/control_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <variant>
#include <vector>

#include "protocol/codec.h"
#include "protocol/frame.h"

namespace qb::cli {
namespace {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

// What the admin should do when a request was lost with the daemon.
std::string LostNote(const proto::ControlRequest& request) {
  if (std::holds_alternative<proto::SnapshotRequest>(request.body))
    return "; the snapshot's outcome is unknown: check `quiescectl jobs`";
  return "";
}

asio::awaitable<void> Exchange(std::string path, proto::ControlRequest request,
                               std::optional<Result<proto::ControlReply>>& out) {
  Socket socket(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  socket.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (ec) {
    out = Error(Code::kIoError,
                "cannot connect to " + path + ": " + ec.message() + " (is quiesced running?)");
    co_return;
  }
  const auto frame = proto::EncodeFrame(proto::EncodeControlRequest(request));
  auto [wec, written] =
      co_await asio::async_write(socket, asio::buffer(frame), asio::as_tuple(asio::use_awaitable));
  (void)written;
  if (wec) {
    out = Error(Code::kIoError, "quiesced went away before answering (write: " + wec.message() +
                                    ")" + LostNote(request));
    co_return;
  }
  proto::FrameDecoder decoder;
  std::vector<std::uint8_t> buf(64 * 1024);
  for (;;) {
    while (auto payload = decoder.Next()) {
      auto reply = proto::DecodeControlReply(*payload);
      if (!reply.ok()) {
        out = Error(Code::kProtocolError, "quiesced sent a reply that cannot be read: " +
                                              reply.status().message() + LostNote(request));
        co_return;
      }
      if (reply->request_id == request.request_id) {
        out = std::move(reply).value();
        co_return;
      }
    }
    const auto& stats = decoder.stats();
    if (stats.oversize > 0 || stats.bad_frames > 0) {
      out = Error(Code::kProtocolError,
                  std::string("quiesced sent a reply that cannot be read: ") +
                      (stats.oversize ? "a frame over the size limit" : "a corrupt frame") +
                      LostNote(request));
      co_return;
    }
    auto [rec, n] =
        co_await socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (n > 0) {
      decoder.Feed(std::span<const std::uint8_t>(buf.data(), n));
      continue;  // what arrived before an error is read first
    }
    if (rec) {
      const std::string why = rec == asio::error::eof ? "the connection closed" : rec.message();
      out = Error(Code::kIoError,
                  "quiesced went away before answering (" + why + ")" + LostNote(request));
      co_return;
    }
  }
}

}  // namespace

Result<proto::ControlReply> Ask(const std::string& socket_path,
                                const proto::ControlRequest& request,
                                std::chrono::steady_clock::duration wait) {
  asio::io_context io;
  std::optional<Result<proto::ControlReply>> out;
  asio::co_spawn(io, Exchange(socket_path, request, out), asio::detached);
  io.run_for(wait);
  if (!out) return Error(Code::kTimeout, "no answer from quiesced");
  return std::move(*out);
}

}  // namespace qb::cli
