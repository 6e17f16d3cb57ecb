#include "host-daemon/control/control_server.h"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <map>

#include "common/guest_text.h"
#include "common/time_limits.h"
#include "host-daemon/control/reply_pages.h"
#include "protocol/message_stream.h"

namespace qb::control {
namespace {

using Clock = std::chrono::steady_clock;
using Socket = asio::local::stream_protocol::socket;
using Session = proto::MessageStream<Socket, proto::ControlRequest, proto::ControlReply>;

proto::ControlError ErrorOf(const Status& s) {
  return proto::ControlError{static_cast<std::uint16_t>(s.code()), s.ToString()};
}

proto::GuestInfo InfoOf(jobs::Guest& guest, jobs::JobRunner& runner) {
  auto info = guest.link->Info();
  proto::GuestInfo out;
  out.name = guest.spec.name;
  out.source = guest.spec.source;
  out.endpoint = guest.spec.endpoint;
  out.link_state = link::LinkStateName(info.state);
  // Guest texts are cut to kMaxGuestFieldBytes so that a guest list stays far below the
  // reply limits whatever the agents say (each text may be up to the codec's 16 KiB).
  auto guest_text = [](const std::string& t) {
    return TruncateUtf8(t, proto::kMaxGuestFieldBytes);
  };
  if (info.hello) {
    out.agent_version = guest_text(info.hello->agent_version);
    out.os_name = guest_text(info.hello->os.name);
  }
  if (info.freeze_state) {
    out.frozen = info.freeze_state->frozen;
    out.frozen_job_id = guest_text(info.freeze_state->job_id);
    out.lease_left_ms = info.freeze_state->lease_left_ms;
  }
  for (const auto& lun : guest.spec.luns) out.luns.push_back(lun.backend + ":" + lun.volume);
  out.busy_job_id = runner.BusyJob(guest.spec.name);
  out.last_error = guest_text(info.last_error);
  return out;
}

template <typename T>
proto::ControlReplyBody Body(T value) {
  return proto::ControlReplyBody(std::move(value));
}

// `reply` gets the page marks of the list verbs (reply_pages.h); the body is returned.
asio::awaitable<proto::ControlReplyBody> Handle(const proto::ControlRequest& request,
                                                proto::ControlReply& reply, jobs::JobRunner& runner,
                                                jobs::GuestRegistry& guests) {
  const proto::ControlRequestBody& body = request.body;
  if (std::holds_alternative<proto::ListGuests>(body)) {
    proto::GuestList list;
    for (auto* guest : guests.All()) list.guests.push_back(InfoOf(*guest, runner));
    co_return Body(std::move(list));
  }
  if (const auto* r = std::get_if<proto::GuestStatusRequest>(&body)) {
    auto* guest = guests.Find(r->vm);
    if (!guest) co_return Body(ErrorOf(Error(Code::kNotFound, "no guest named " + r->vm)));
    auto link = guest->link;
    // A live question to the agent: its real freeze state, not the daemon's memory of it.
    auto status = co_await link->Status(Clock::now() + limits::kRequestTimeout);
    guest = guests.Find(r->vm);
    if (!guest) co_return Body(ErrorOf(Error(Code::kNotFound, "guest went away")));
    auto info = InfoOf(*guest, runner);
    // When the agent cannot be asked, the last state it reported is shown with the error
    // (link_state says it is not live); the daemon never guesses "thawed".
    if (!status.ok()) info.last_error = status.status().ToString();
    co_return Body(std::move(info));
  }
  if (const auto* r = std::get_if<proto::SnapshotRequest>(&body)) {
    auto report = co_await runner.Snapshot(*r);
    co_return Body(std::move(report));
  }
  if (const auto* r = std::get_if<proto::ListSnapshots>(&body)) {
    auto list = co_await runner.ListSnapshots(r->vm);
    if (!list.ok()) co_return Body(ErrorOf(list.status()));
    const auto offset = std::min<std::size_t>(request.page.offset, list->size());
    std::vector<proto::SnapshotInfo> rest(list->begin() + static_cast<std::ptrdiff_t>(offset),
                                          list->end());
    co_return Body(proto::SnapshotList{TakePage(
        std::move(rest), request.page.offset,
        PageLimit(request.page.limit, proto::kDefaultSnapshotsPage, proto::kMaxSnapshotsPage),
        reply)});
  }
  if (const auto* r = std::get_if<proto::DeleteSnapshot>(&body)) {
    Status s = co_await runner.DeleteSnapshot(r->snapshot_id);
    if (!s.ok()) co_return Body(ErrorOf(s));
    co_return Body(proto::Done{"deleted " + r->snapshot_id});
  }
  if (const auto* r = std::get_if<proto::ExposeRequest>(&body)) {
    if (r->as_name.empty())
      co_return Body(ErrorOf(Error(Code::kInvalidArgument, "expose needs a name (--as)")));
    auto exposed = co_await runner.Expose(r->snapshot_id, r->as_name);
    if (!exposed.ok()) co_return Body(ErrorOf(exposed.status()));
    co_return Body(proto::Done{"exposed " + r->snapshot_id + " as " + *exposed});
  }
  if (const auto* r = std::get_if<proto::RollbackRequest>(&body)) {
    Status s = co_await runner.Rollback(r->vm, r->snapshot_id);
    if (!s.ok()) co_return Body(ErrorOf(s));
    co_return Body(proto::Done{"rolled " + r->vm + " back to " + r->snapshot_id});
  }
  if (const auto* r = std::get_if<proto::PruneRequest>(&body)) {
    auto removed = co_await runner.Prune(r->vm);
    if (!removed.ok()) co_return Body(ErrorOf(removed.status()));
    proto::SnapshotList list;
    for (const auto& row : *removed) {
      list.snapshots.push_back(
          proto::SnapshotInfo{row.id, row.vm, "", row.backend, row.lun, row.array_name,
                              std::string(catalog::ConsistencyLabel(row.consistency)), ""});
    }
    co_return Body(std::move(list));
  }
  if (std::holds_alternative<proto::ListJobs>(body)) {
    const auto limit = PageLimit(request.page.limit, proto::kDefaultJobsPage, proto::kMaxJobsPage);
    // One more than the page, to know whether more follow.
    auto jobs = co_await runner.ListJobs(static_cast<int>(
        std::min<std::uint64_t>(std::uint64_t{request.page.offset} + limit + 1, INT32_MAX)));
    if (!jobs.ok()) co_return Body(ErrorOf(jobs.status()));
    const auto offset = std::min<std::size_t>(request.page.offset, jobs->size());
    std::vector<proto::JobReport> rest(jobs->begin() + static_cast<std::ptrdiff_t>(offset),
                                       jobs->end());
    co_return Body(proto::JobList{TakePage(std::move(rest), request.page.offset, limit, reply)});
  }
  if (const auto* r = std::get_if<proto::ThawRequest>(&body)) {
    auto done = co_await runner.Thaw(r->vm);
    if (!done.ok()) co_return Body(ErrorOf(done.status()));
    co_return Body(proto::Done{r->vm + ": " + *done});
  }
  co_return Body(ErrorOf(Error(Code::kInvalidArgument, "unknown request")));
}

// Closes `session`'s socket when `timer` fires, unless the session is gone by then.
void CloseWhenTimerFires(asio::steady_timer& timer, const std::shared_ptr<Session>& session) {
  timer.async_wait([weak = std::weak_ptr<Session>(session)](boost::system::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock()) {
      boost::system::error_code ignored;
      s->stream().close(ignored);
    }
  });
}

}  // namespace

struct ControlServer::Sessions {
  struct Open {
    std::weak_ptr<Session> session;
    bool in_flight = false;  // a request is being answered
  };
  std::map<std::uint64_t, Open> open;
  std::uint64_t next_id = 0;
  std::size_t busy_replies = 0;  // clients over the cap being told "busy"
  bool stopping = false;
};

namespace {

asio::awaitable<void> Serve(std::shared_ptr<Session> session, jobs::JobRunner& runner,
                            jobs::GuestRegistry& guests,
                            std::shared_ptr<ControlServer::Sessions> sessions,
                            std::chrono::milliseconds idle_timeout) {
  const auto id = sessions->next_id++;
  sessions->open[id] = {session, false};
  asio::steady_timer idle(session->stream().get_executor());
  while (!sessions->stopping) {
    // Idle while reading: a client that sends no (whole) request in time is closed.
    idle.expires_after(idle_timeout);
    CloseWhenTimerFires(idle, session);
    auto request = co_await session->Read();
    idle.cancel();
    if (!request.ok()) break;
    sessions->open[id].in_flight = true;
    auto reply = co_await Dispatch(*request, runner, guests);
    Status written = co_await session->Write(reply);
    sessions->open[id].in_flight = false;
    if (!written.ok()) break;
  }
  boost::system::error_code ignored;
  session->stream().close(ignored);
  sessions->open.erase(id);
}

// A client over the cap: its first request is answered with kBusy (same request id), then the
// connection closes. Waits at most kControlBusyReplyWait for that request.
asio::awaitable<void> AnswerBusy(std::shared_ptr<Session> session,
                                 std::shared_ptr<ControlServer::Sessions> sessions,
                                 std::size_t cap) {
  ++sessions->busy_replies;
  asio::steady_timer wait(session->stream().get_executor(), limits::kControlBusyReplyWait);
  CloseWhenTimerFires(wait, session);
  auto request = co_await session->Read();
  wait.cancel();
  if (request.ok()) {
    proto::ControlReply reply;
    reply.request_id = request->request_id;
    reply.body = ErrorOf(Error(Code::kBusy, "daemon busy: too many control clients (" +
                                                std::to_string(cap) + "); try again"));
    co_await session->Write(reply);
  }
  boost::system::error_code ignored;
  session->stream().close(ignored);
  --sessions->busy_replies;
}

}  // namespace

asio::awaitable<proto::ControlReply> Dispatch(const proto::ControlRequest& request,
                                              jobs::JobRunner& runner,
                                              jobs::GuestRegistry& guests) {
  proto::ControlReply reply;
  reply.request_id = request.request_id;
  if (request.protocol_major != proto::kControlProtocolMajor) {
    reply.body = ErrorOf(Error(Code::kVersionMismatch,
                               "control protocol major " + std::to_string(request.protocol_major) +
                                   " not supported (daemon speaks " +
                                   std::to_string(proto::kControlProtocolMajor) + ")"));
    co_return reply;
  }
  try {
    reply.body = co_await Handle(request, reply, runner, guests);
  } catch (const std::exception& e) {
    spdlog::error("control request failed with an exception (a bug): {}", e.what());
    reply.body = ErrorOf(Error(Code::kInternal, std::string("internal error: ") + e.what()));
  }
  co_return reply;
}

ControlServer::ControlServer(asio::any_io_executor io, jobs::JobRunner& runner,
                             jobs::GuestRegistry& guests, ControlOptions options)
    : io_(std::move(io)),
      runner_(runner),
      guests_(guests),
      options_(std::move(options)),
      acceptor_(io_),
      sessions_(std::make_shared<Sessions>()) {}

std::size_t ControlServer::sessions() const { return sessions_->open.size(); }

ControlServer::~ControlServer() { Stop(); }

Status ControlServer::Start() {
  gid_t gid = static_cast<gid_t>(-1);
  if (!options_.group.empty()) {
    struct group* g = ::getgrnam(options_.group.c_str());
    if (!g)
      return Error(Code::kInvalidArgument,
                   "control socket group " + options_.group + " does not exist");
    gid = g->gr_gid;
  }
  std::remove(options_.socket_path.c_str());
  asio::local::stream_protocol::endpoint endpoint(options_.socket_path);
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (ec)
    return Error(Code::kIoError, "control socket " + options_.socket_path + ": " + ec.message());
  if (::chmod(options_.socket_path.c_str(), options_.mode) != 0)
    return Error(Code::kIoError, "chmod control socket: " + std::string(std::strerror(errno)));
  if (gid != static_cast<gid_t>(-1) &&
      ::chown(options_.socket_path.c_str(), static_cast<uid_t>(-1), gid) != 0)
    return Error(Code::kIoError, "chown control socket: " + std::string(std::strerror(errno)));
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(Code::kIoError, "listen on control socket: " + ec.message());
  started_ = true;
  asio::co_spawn(io_, Accept(), asio::detached);
  return Status::Ok();
}

void ControlServer::Stop() {
  if (!started_) return;
  started_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  std::remove(options_.socket_path.c_str());
  sessions_->stopping = true;
  for (auto& [id, open] : sessions_->open) {
    if (open.in_flight) continue;  // Serve closes it once its reply is written
    if (auto session = open.session.lock()) session->stream().close(ignored);
  }
}

asio::awaitable<void> ControlServer::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      continue;
    }
    if (sessions_->open.size() >= options_.max_sessions) {
      // Telling the client costs a little; past a second cap's worth it is just closed.
      if (sessions_->busy_replies >= options_.max_sessions) continue;
      spdlog::warn("control socket: too many clients ({}), answering busy", options_.max_sessions);
      asio::co_spawn(io_,
                     AnswerBusy(std::make_shared<Session>(std::move(socket)), sessions_,
                                options_.max_sessions),
                     asio::detached);
      continue;
    }
    asio::co_spawn(io_,
                   Serve(std::make_shared<Session>(std::move(socket)), runner_, guests_, sessions_,
                         options_.idle_timeout),
                   asio::detached);
  }
}

}  // namespace qb::control
