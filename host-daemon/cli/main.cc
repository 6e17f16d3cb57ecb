// quiescectl: the admin's command line for quiesced, over its control socket.
// Every command takes --json (one JSON document on stdout). Exit codes: exit_codes.h / README.
#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "common/guest_text.h"
#include "common/time_limits.h"
#include "host-daemon/cli/control_client.h"
#include "host-daemon/cli/exit_codes.h"
#include "host-daemon/config/config.h"

namespace {

namespace json = boost::json;
using namespace qb;

// Every text a reply carries may hold guest text (names, states, reasons, agent error
// messages inside job errors): each one goes through GuestText() before it reaches the
// terminal or the JSON document (valid UTF-8, no control or reordering characters, capped).
std::string Shown(const std::string& s) { return GuestText(s); }

json::array Strings(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(Shown(s));
  return a;
}

json::object ToJson(const proto::GuestInfo& g) {
  return {{"name", Shown(g.name)},
          {"source", Shown(g.source)},
          {"endpoint", Shown(g.endpoint)},
          {"link_state", Shown(g.link_state)},
          {"agent_version", Shown(g.agent_version)},
          {"os_name", Shown(g.os_name)},
          {"frozen", g.frozen},
          {"frozen_job_id", Shown(g.frozen_job_id)},
          {"lease_left_ms", g.lease_left_ms},
          {"luns", Strings(g.luns)},
          {"busy_job_id", Shown(g.busy_job_id)},
          {"last_error", Shown(g.last_error)}};
}

json::object ToJson(const proto::SnapshotInfo& s) {
  return {{"snapshot_id", Shown(s.snapshot_id)},
          {"vm", Shown(s.vm)},
          {"job_id", Shown(s.job_id)},
          {"backend", Shown(s.backend)},
          {"lun", Shown(s.lun)},
          {"array_name", Shown(s.array_name)},
          {"consistency", Shown(s.consistency)},
          {"created_at", Shown(s.created_at)}};
}

json::object ToJson(const proto::JobReport& j) {
  json::array phases, snapshots, details;
  for (const auto& p : j.phases)
    phases.push_back(json::object{{"phase", Shown(p.phase)}, {"duration_us", p.duration_us}});
  for (const auto& s : j.snapshots) snapshots.push_back(ToJson(s));
  for (const auto& w : j.writer_details) {
    details.push_back(json::object{{"vm", Shown(w.vm)},
                                   {"name", Shown(w.name)},
                                   {"phase", proto::WriterPhaseName(w.phase)},
                                   {"ok", w.ok},
                                   {"state", Shown(w.state)}});
  }
  return {{"job_id", Shown(j.job_id)},
          {"vms", Strings(j.vms)},
          {"state", Shown(j.state)},
          {"consistency", Shown(j.consistency)},
          {"error", Shown(j.error)},
          {"error_code", j.error_code},
          {"phases", phases},
          {"freeze_window_us", j.freeze_window_us},
          {"snapshots", snapshots},
          {"not_covered", Strings(j.not_covered)},
          {"not_covered_truncated", j.not_covered_truncated},
          {"writers", Strings(j.writers)},
          {"writer_details", details},
          {"writers_truncated", j.writers_truncated},
          {"started_at", Shown(j.started_at)}};
}

void PrintGuest(const proto::GuestInfo& g) {
  std::cout << Shown(g.name) << "  " << Shown(g.link_state) << "  "
            << (g.frozen ? "FROZEN(" + Shown(g.frozen_job_id) + ")" : "thawed") << "  "
            << Shown(g.endpoint);
  if (!g.agent_version.empty()) std::cout << "  agent=" << Shown(g.agent_version);
  if (!g.os_name.empty()) std::cout << "  os=" << Shown(g.os_name);
  if (!g.busy_job_id.empty()) std::cout << "  job=" << Shown(g.busy_job_id);
  if (!g.last_error.empty() && g.link_state != "connected")
    std::cout << "  error=" << Shown(g.last_error);
  std::cout << "\n";
  for (const auto& l : g.luns) std::cout << "    lun " << Shown(l) << "\n";
}

void PrintSnapshot(const proto::SnapshotInfo& s) {
  std::cout << Shown(s.snapshot_id) << "  " << Shown(s.vm) << "  " << Shown(s.consistency) << "  "
            << Shown(s.created_at) << "  " << Shown(s.backend) << ":" << Shown(s.array_name)
            << "\n";
}

void PrintJob(const proto::JobReport& j) {
  std::cout << "job " << Shown(j.job_id) << "  " << Shown(j.state) << "  " << Shown(j.consistency)
            << "\n";
  if (!j.error.empty()) std::cout << "  error: " << Shown(j.error) << "\n";
  for (const auto& p : j.phases)
    std::cout << "  " << Shown(p.phase) << " " << p.duration_us << " us\n";
  if (j.freeze_window_us) std::cout << "  freeze window " << j.freeze_window_us << " us\n";
  for (const auto& s : j.snapshots)
    std::cout << "  snapshot " << Shown(s.snapshot_id) << " " << Shown(s.array_name) << "\n";
  for (const auto& n : j.not_covered) std::cout << "  not covered: " << Shown(n) << "\n";
  if (j.not_covered_truncated)
    std::cout << "  not covered: " << j.not_covered_truncated << " more not listed\n";
  if (!j.writer_details.empty()) {
    for (const auto& w : j.writer_details)
      std::cout << "  writer " << Shown(w.vm) << ": " << Shown(w.name) << " ["
                << proto::WriterPhaseName(w.phase) << "]: " << Shown(w.state) << "\n";
  } else {
    for (const auto& w : j.writers) std::cout << "  writer " << Shown(w) << "\n";
  }
  if (j.writers_truncated)
    std::cout << "  writers: " << j.writers_truncated << " more results not kept\n";
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
  proto::Page page;
  auto* snapshots = app.add_subcommand("snapshots", "list snapshots");
  snapshots->add_option("vm", vm);
  snapshots->add_option("--limit", page.limit, "at most this many (default: the daemon's page)");
  snapshots->add_option("--offset", page.offset, "skip this many first (paging)");
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
  auto* jobs = app.add_subcommand("jobs", "recent jobs, newest first");
  jobs->add_option("--limit", page.limit, "at most this many (default: the daemon's page)");
  jobs->add_option("--offset", page.offset, "skip this many first (paging)");
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

  // A snapshot job can run for a whole lease plus margins, so the wait is bounded by
  // kMaxLease + kRequestTimeout's, not one request timeout.
  const auto wait = limits::kMaxLease + limits::kFreezeReplySlack + 2 * limits::kRequestTimeout;
  const proto::ControlRequest request{1, proto::kControlProtocolMajor, body, page};
  auto reply = cli::Ask(socket_path, request, wait);
  if (!reply.ok()) {
    // The daemon is unreachable, went away or answered nonsense: exit 1, never "guest
    // unreachable" (that code is for a reply saying so).
    if (as_json)
      std::cout << json::serialize(json::object{{"error", Shown(reply.status().ToString())},
                                                {"code", static_cast<int>(reply.status().code())}})
                << "\n";
    else
      std::cerr << "quiescectl: " << Shown(reply.status().ToString()) << "\n";
    return cli::kExitOther;
  }
  int rc = cli::kExitOk;
  json::value doc;
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, proto::ControlError>) {
          rc = cli::ExitCodeForError(b.code);
          doc = json::object{{"error", Shown(b.message)}, {"code", b.code}};
          if (!as_json) std::cerr << "quiescectl: " << Shown(b.message) << "\n";
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
          doc = json::object{{"done", Shown(b.what)}};
          if (!as_json) std::cout << Shown(b.what) << "\n";
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
  if (reply->more) {
    std::cerr << "quiescectl: more entries follow: ask again with --offset " << reply->next_offset
              << "\n";
  }
  return rc;
}
