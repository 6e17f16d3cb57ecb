// quiesce-agent for Linux guests: wires config, logging, the fsfreeze service and the
// transports. See guest-agent/README.md.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <iostream>

#include "common/logging.h"
#include "guest-agent/agent_config.h"
#include "guest-agent/linux/freeze_record.h"
#include "guest-agent/linux/fs_freezer.h"
#include "guest-agent/linux/fsfreeze_service.h"
#include "guest-agent/linux/hook_runner.h"
#include "guest-agent/linux/mount_table.h"
#include "guest-agent/linux/transports.h"

#ifndef QB_AGENT_VERSION
#define QB_AGENT_VERSION "0.0.0"
#endif

namespace {

namespace asio = boost::asio;
using qb::agent::AgentConfig;

// --thaw-all: the administrator's emergency exit. Thaws what the crash record lists and, with
// --all-mounts, every block-device mount of the guest. Prints one line per mount point.
int ThawAll(const AgentConfig& config, bool all_mounts) {
  int failures = 0;
  std::vector<std::string> targets;
  qb::agent::FreezeRecordFile record(config.run_dir);
  auto stale = record.Read();
  if (!stale.ok()) {
    std::cerr << "crash record: " << stale.status().ToString() << "\n";
  } else if (stale->has_value()) {
    targets = (*stale)->mount_points;
  }
  if (all_mounts) {
    auto table = qb::agent::ReadMountTable();
    if (!table.ok()) {
      std::cerr << table.status().ToString() << "\n";
      ++failures;
    } else {
      for (const auto& entry : *table) {
        if (entry.dev_major != 0) targets.push_back(entry.mount_point);
      }
    }
  }
  for (const auto& mount : targets) {
    auto outcome = qb::agent::ThawMountPoint(mount);
    if (!outcome.status.ok()) {
      ++failures;
      std::cout << mount << ": " << outcome.status.ToString() << "\n";
    } else {
      std::cout << mount << ": " << (outcome.was_frozen ? "thawed" : "was not frozen") << "\n";
    }
  }
  // Hooks whose `freeze` a dead agent started get their `thaw`, as a restarted agent would.
  if (stale.ok() && stale->has_value() && !(*stale)->hooks_started.empty()) {
    qb::agent::HookOptions hooks{config.hooks_dir, config.hook_timeout};
    for (const auto& r : qb::agent::RunThawHooks(hooks, (*stale)->hooks_started, (*stale)->job_id,
                                                 /*snapshot_ok=*/false, /*recovery=*/true)) {
      std::cout << "thaw hook " << r.name << ": " << r.state << "\n";
      if (!r.ok) ++failures;
    }
  }
  if (failures == 0) (void)record.Remove();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quiesce-agent: freezes this guest's file systems when the host asks"};
  std::string config_path = "/etc/quiesce-agent/agent.toml";
  std::string unix_path, port_name, run_dir, hooks_dir, mountinfo;
  bool thaw_all = false, all_mounts = false, version = false, foreground = false;
  bool no_virtio = false;
  app.add_option("--config", config_path, "configuration file (TOML)");
  app.add_option("--unix", unix_path, "also listen on this unix socket");
  app.add_option("--port-name", port_name, "virtio-serial port name");
  app.add_flag("--no-virtio-serial", no_virtio, "do not serve the virtio-serial port");
  app.add_option("--run-dir", run_dir, "directory of the crash record (tmpfs)");
  app.add_option("--hooks-dir", hooks_dir, "freeze/thaw hooks directory");
  app.add_option("--mountinfo", mountinfo, "mount table to use (tests)")->group("");
  app.add_flag("--thaw-all", thaw_all, "thaw what a dead agent left frozen, then exit");
  app.add_flag("--all-mounts", all_mounts, "with --thaw-all: thaw every block-device mount");
  app.add_flag("--version", version, "print the version and exit");
  app.add_flag("--foreground", foreground, "log to stderr (the agent never daemonizes itself)");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::cout << "quiesce-agent " << QB_AGENT_VERSION << "\n";
    return 0;
  }

  AgentConfig config;
  auto loaded = qb::agent::LoadAgentConfig(config_path);
  if (loaded.ok()) {
    config = *loaded;
  } else if (loaded.status().code() != qb::Code::kNotFound || app.count("--config") > 0) {
    std::cerr << "quiesce-agent: " << loaded.status().ToString() << "\n";
    return 2;
  }
  if (!unix_path.empty()) config.unix_path = unix_path;
  if (!port_name.empty()) config.port_name = port_name;
  if (!run_dir.empty()) config.run_dir = run_dir;
  if (!hooks_dir.empty()) config.hooks_dir = hooks_dir;
  if (no_virtio) config.virtio_serial = false;

  if (thaw_all) return ThawAll(config, all_mounts);
  (void)foreground;

  ::signal(SIGPIPE, SIG_IGN);
  qb::LogOptions log_options;
  log_options.level = config.log_level;
  log_options.file = config.log_file;
  auto log = qb::SetupLogging("quiesce-agent", log_options);

  asio::io_context io(1);
  qb::agent::FsFreezeServiceOptions options;
  if (!mountinfo.empty()) options.mountinfo_path = mountinfo;
  options.run_dir = config.run_dir;
  options.hooks_dir = config.hooks_dir;
  options.hook_timeout = config.hook_timeout;
  options.default_lease = config.default_lease;
  options.lease_cap = config.lease_cap;
  options.agent_version = QB_AGENT_VERSION;
  options.logger = log;
  qb::agent::FsFreezeService service(io.get_executor(), options);

  // Before anything else: thaw what a dead agent left frozen.
  qb::Status recovered = service.RecoverStaleFreeze();
  if (!recovered.ok()) log->error("stale freeze recovery: {}", recovered.ToString());

  if (config.unix_path.empty() && !config.virtio_serial && !config.vsock) {
    log->critical("no transport configured");
    return 2;
  }
  if (!config.unix_path.empty()) {
    asio::co_spawn(io, qb::agent::ServeUnixSocket(config.unix_path, service, log), asio::detached);
  }
  if (config.virtio_serial) {
    asio::co_spawn(io, qb::agent::ServeVirtioPort(config.port_name, service, log), asio::detached);
  }
  if (config.vsock) {
    asio::co_spawn(io, qb::agent::ServeVsock(config.vsock_port, service, log), asio::detached);
  }

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    log->info("signal {}: thawing and stopping", signal_number);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await service.Shutdown();
          io.stop();
        },
        asio::detached);
  });
  log->info("quiesce-agent {} started", QB_AGENT_VERSION);
  io.run();
  log->info("quiesce-agent stopped");
  return 0;
}
