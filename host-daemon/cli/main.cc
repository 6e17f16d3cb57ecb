// quiescectl: the admin's command line for quiesced, over its control socket.
// Every command takes --json (one JSON document on stdout). Exit codes: exit_codes.h / README.
#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <optional>

#include "common/time_limits.h"
#include "host-daemon/cli/exit_codes.h"
#include "host-daemon/config/config.h"
#include "protocol/message_stream.h"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace qb;
using Socket = asio::local::stream_protocol::socket;
using Client = proto::MessageStream<Socket, proto::ControlReply, proto::ControlRequest>;

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object ToJson(const proto::GuestInfo& g) {
  return {{"name", g.name},
          {"source", g.source},
          {"endpoint", g.endpoint},
          {"link_state", g.link_state},
          {"agent_version", g.agent_version},
          {"os_name", g.os_name},
          {"frozen", g.frozen},
          {"frozen_job_id", g.frozen_job_id},
          {"lease_left_ms", g.lease_left_ms},
          {"luns", Strings(g.luns)},
          {"busy_job_id", g.busy_job_id},
          {"last_error", g.last_error}};
}

json::object ToJson(const proto::SnapshotInfo& s) {
  return {{"snapshot_id", s.snapshot_id},
          {"vm", s.vm},
          {"job_id", s.job_id},
          {"backend", s.backend},
          {"lun", s.lun},
          {"array_name", s.array_name},
          {"consistency", s.consistency},
          {"created_at", s.created_at}};
}

json::object ToJson(const proto::JobReport& j) {
  json::array phases, snapshots;
  for (const auto& p : j.phases)
    phases.push_back(json::object{{"phase", p.phase}, {"duration_us", p.duration_us}});
  for (const auto& s : j.snapshots) snapshots.push_back(ToJson(s));
  return {{"job_id", j.job_id},
          {"vms", Strings(j.vms)},
          {"state", j.state},
          {"consistency", j.consistency},
          {"error", j.error},
          {"error_code", j.error_code},
          {"phases", phases},
          {"freeze_window_us", j.freeze_window_us},
          {"snapshots", snapshots},
          {"not_covered", Strings(j.not_covered)},
          {"writers", Strings(j.writers)},
          {"started_at", j.started_at}};
}

void PrintGuest(const proto::GuestInfo& g) {
  std::cout << g.name << "  " << g.link_state << "  "
            << (g.frozen ? "FROZEN(" + g.frozen_job_id + ")" : "thawed") << "  " << g.endpoint;
  if (!g.agent_version.empty()) std::cout << "  agent=" << g.agent_version;
  if (!g.busy_job_id.empty()) std::cout << "  job=" << g.busy_job_id;
  if (!g.last_error.empty() && g.link_state != "connected") std::cout << "  error=" << g.last_error;
  std::cout << "\n";
  for (const auto& l : g.luns) std::cout << "    lun " << l << "\n";
}

void PrintSnapshot(const proto::SnapshotInfo& s) {
  std::cout << s.snapshot_id << "  " << s.vm << "  " << s.consistency << "  " << s.created_at
            << "  " << s.backend << ":" << s.array_name << "\n";
}

void PrintJob(const proto::JobReport& j) {
  std::cout << "job " << j.job_id << "  " << j.state << "  " << j.consistency << "\n";
  if (!j.error.empty()) std::cout << "  error: " << j.error << "\n";
  for (const auto& p : j.phases) std::cout << "  " << p.phase << " " << p.duration_us << " us\n";
  if (j.freeze_window_us) std::cout << "  freeze window " << j.freeze_window_us << " us\n";
  for (const auto& s : j.snapshots)
    std::cout << "  snapshot " << s.snapshot_id << " " << s.array_name << "\n";
  for (const auto& n : j.not_covered) std::cout << "  not covered: " << n << "\n";
  for (const auto& w : j.writers) std::cout << "  writer " << w << "\n";
}

// Sends one request and waits for its reply. A snapshot job can run for a whole lease plus
// margins, so the wait is bounded by kMaxLease + kRequestTimeout, not one request timeout.
qb::Result<proto::ControlReply> Ask(const std::string& socket_path,
                                    const proto::ControlRequestBody& body) {
  asio::io_context io;
  std::optional<qb::Result<proto::ControlReply>> out;
  asio::co_spawn(
      io,
      [](std::string path, proto::ControlRequestBody body,
         std::optional<qb::Result<proto::ControlReply>>& out) -> asio::awaitable<void> {
        Socket socket(co_await asio::this_coro::executor);
        boost::system::error_code ec;
        socket.connect(asio::local::stream_protocol::endpoint(path), ec);
        if (ec) {
          out = qb::Error(Code::kIoError, "cannot connect to " + path + ": " + ec.message());
          co_return;
        }
        Client client(std::move(socket));
        const proto::ControlRequest request{1, proto::kControlProtocolMajor, body};
        Status written = co_await client.Write(request);
        if (!written.ok()) {
          out = written;
          co_return;
        }
        auto reply = co_await client.Read();
        if (reply.ok())
          out = std::move(reply).value();
        else
          out = reply.status();
      }(socket_path, body, out),
      asio::detached);
  io.run_for(limits::kMaxLease + limits::kFreezeReplySlack + 2 * limits::kRequestTimeout);
  if (!out) return qb::Error(Code::kTimeout, "no answer from quiesced");
  return std::move(*out);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quiescectl: drive quiesced (application-consistent LUN snapshots)"};
  app.require_subcommand(1);
  std::string socket_path = qb::config::DaemonSettings{}.control_socket;
  bool as_json = false;
  app.add_option("--socket", socket_path, "quiesced control socket");
  app.add_flag("--json", as_json, "print one JSON document");

  std::string vm, snap, as_name, group, vss = "copy";
  std::vector<std::string> vms;
  bool allow_partial = false;
  std::uint32_t lease_ms = 0;
  auto* guests = app.add_subcommand("guests", "list guests and their agent links");
  auto* status = app.add_subcommand("status", "a guest's real freeze state, asked of its agent");
  status->add_option("vm", vm)->required();
  auto* snapshot = app.add_subcommand("snapshot", "freeze, snapshot the LUNs, thaw");
  snapshot->add_option("vm", vms);
  snapshot->add_option("--group", group, "a group from the config");
  snapshot->add_option("--vss", vss, "VSS backup type for Windows guests")
      ->check(CLI::IsMember({"copy", "full"}));
  snapshot->add_flag("--allow-partial", allow_partial, "accept volumes spanning other disks");
  snapshot->add_option("--lease-ms", lease_ms, "requested freeze lease (default from limits)");
  auto* snapshots = app.add_subcommand("snapshots", "list snapshots");
  snapshots->add_option("vm", vm);
  auto* del = app.add_subcommand("delete", "remove a snapshot from the array and the catalog");
  del->add_option("snapshot", snap)->required();
  auto* expose = app.add_subcommand("expose", "clone a snapshot to a new volume");
  expose->add_option("snapshot", snap)->required();
  expose->add_option("--as", as_name)->required();
  auto* rollback = app.add_subcommand("rollback", "revert a stopped VM's LUN to a snapshot");
  rollback->add_option("vm", vm)->required();
  rollback->add_option("snapshot", snap)->required();
  auto* prune = app.add_subcommand("prune", "apply retention now");
  prune->add_option("vm", vm);
  auto* jobs = app.add_subcommand("jobs", "recent jobs");
  auto* thaw = app.add_subcommand("thaw", "emergency thaw of a guest");
  thaw->add_option("vm", vm)->required();
  for (auto* sub : app.get_subcommands({}))
    sub->add_flag("--json", as_json, "print one JSON document");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? cli::kExitOk : cli::kExitUsage;
  }

  proto::ControlRequestBody body;
  if (guests->parsed())
    body = proto::ListGuests{};
  else if (status->parsed())
    body = proto::GuestStatusRequest{vm};
  else if (snapshot->parsed()) {
    if (vms.empty() && group.empty()) {
      std::cerr << "snapshot: name a VM or --group\n";
      return cli::kExitUsage;
    }
    proto::SnapshotRequest r;
    r.vms = vms;
    r.group = group;
    r.vss_mode = vss == "full" ? proto::VssMode::kFull : proto::VssMode::kCopy;
    r.allow_partial = allow_partial;
    r.lease_ms = lease_ms;
    body = r;
  } else if (snapshots->parsed())
    body = proto::ListSnapshots{vm};
  else if (del->parsed())
    body = proto::DeleteSnapshot{snap};
  else if (expose->parsed())
    body = proto::ExposeRequest{snap, as_name};
  else if (rollback->parsed())
    body = proto::RollbackRequest{vm, snap};
  else if (prune->parsed())
    body = proto::PruneRequest{vm};
  else if (jobs->parsed())
    body = proto::ListJobs{};
  else if (thaw->parsed())
    body = proto::ThawRequest{vm};

  auto reply = Ask(socket_path, body);
  if (!reply.ok()) {
    if (as_json)
      std::cout << json::serialize(json::object{{"error", reply.status().ToString()},
                                                {"code", static_cast<int>(reply.status().code())}})
                << "\n";
    else
      std::cerr << "quiescectl: " << reply.status().ToString() << "\n";
    return cli::kExitOther;
  }
  int rc = cli::kExitOk;
  json::value doc;
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, proto::ControlError>) {
          rc = cli::ExitCodeForError(b.code);
          doc = json::object{{"error", b.message}, {"code", b.code}};
          if (!as_json) std::cerr << "quiescectl: " << b.message << "\n";
        } else if constexpr (std::is_same_v<T, proto::GuestList>) {
          json::array a;
          for (const auto& g : b.guests) {
            a.push_back(ToJson(g));
            if (!as_json) PrintGuest(g);
          }
          doc = a;
        } else if constexpr (std::is_same_v<T, proto::GuestInfo>) {
          doc = ToJson(b);
          if (!as_json) PrintGuest(b);
          if (b.link_state != "connected") rc = cli::kExitGuestUnreachable;
        } else if constexpr (std::is_same_v<T, proto::JobReport>) {
          doc = ToJson(b);
          if (!as_json) PrintJob(b);
          rc = cli::ExitCodeForJob(b);
        } else if constexpr (std::is_same_v<T, proto::SnapshotList>) {
          json::array a;
          for (const auto& s : b.snapshots) {
            a.push_back(ToJson(s));
            if (!as_json) PrintSnapshot(s);
          }
          doc = a;
        } else if constexpr (std::is_same_v<T, proto::Done>) {
          doc = json::object{{"done", b.what}};
          if (!as_json) std::cout << b.what << "\n";
        } else if constexpr (std::is_same_v<T, proto::JobList>) {
          json::array a;
          for (const auto& j : b.jobs) {
            a.push_back(ToJson(j));
            if (!as_json) PrintJob(j);
          }
          doc = a;
        }
      },
      reply->body);
  if (as_json) std::cout << json::serialize(doc) << "\n";
  return rc;
}
