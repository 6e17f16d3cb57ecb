// quiesced: the host daemon. main() wires everything (no singletons): config, catalog, array
// backends, static guests and their agent links, the job runner, the control socket.
//
// One io_context on the main thread; blocking calls (arrays, SQLite) on a worker pool.
// SIGTERM / SIGINT: running jobs are cut short ("cancelled: daemon stopping") and every guest
// they froze is thawed before the daemon exits; their replies go out before the loop stops.
// One daemon per state directory and control socket (InstanceLock, taken first). At start, a
// guest still frozen for a job a killed daemon left running is thawed as soon as its agent
// reconnects (JobRunner::ThawLeftoverFreeze), and those jobs are reconciled.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <functional>
#include <iostream>
#include <vector>

#include "common/logging.h"
#include "host-daemon/arrays/configured_backends.h"
#include "host-daemon/catalog/catalog.h"
#include "host-daemon/config/config.h"
#include "host-daemon/control/control_server.h"
#include "host-daemon/daemon/instance_lock.h"
#include "host-daemon/daemon/libvirt_guest_sync.h"
#include "host-daemon/discovery/discovery.h"
#include "host-daemon/jobs/job_runner.h"

namespace {

namespace asio = boost::asio;
using namespace qb;

constexpr const char* kDaemonVersion = "quiesced 0.1.0";
// After SIGTERM has ended every job, the io loop keeps running this long at most for control
// sessions to write the jobs' replies ("cancelled: daemon stopping") and close. Not a freeze
// budget (the guests are thawed by then), so it is not in common/time_limits.h.
constexpr std::chrono::milliseconds kShutdownReplyGrace{2000};

// Raises the soft open-file limit to the hard limit: every connected guest costs one fd.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
      spdlog::warn("cannot raise the open-file limit to {}", limit.rlim_max);
  }
  spdlog::info("open-file limit {}", limit.rlim_cur);
}

jobs::JobRunnerOptions RunnerOptions(const config::Config& cfg) {
  jobs::JobRunnerOptions o;
  o.late_policy = cfg.late_snapshot_policy == config::LateSnapshotPolicy::kRemove
                      ? jobs::LatePolicy::kRemove
                      : jobs::LatePolicy::kCrashConsistent;
  for (const auto& g : cfg.groups) o.groups[g.name] = g.vms;
  for (const auto& r : cfg.retention)
    o.retention[r.target] = jobs::RetentionRule{r.keep_last, r.max_age};
  return o;
}

int Run(const config::Config& cfg) {
  RaiseOpenFileLimit();
  asio::io_context io(1);
  asio::thread_pool workers(static_cast<std::size_t>(std::max(1, cfg.daemon.worker_threads)));

  std::error_code ignored;
  const auto state_dir = std::filesystem::path(cfg.daemon.catalog_path).parent_path();
  const auto socket_dir = std::filesystem::path(cfg.daemon.control_socket).parent_path();
  std::filesystem::create_directories(state_dir, ignored);
  std::filesystem::create_directories(socket_dir, ignored);
  // Before the catalog, the socket, any guest link, reconcile or thaw: a second daemon must
  // not touch the live one's socket, jobs or guests. One lock per state directory (catalog,
  // jobs) and one beside the control socket (a second configuration sharing only the socket).
  std::vector<quiesced::InstanceLock> locks;
  for (const auto& path :
       {(state_dir / "quiesced.lock").string(), cfg.daemon.control_socket + ".lock"}) {
    auto lock = quiesced::InstanceLock::Acquire(path);
    if (!lock.ok()) {
      spdlog::critical("{}", lock.status().ToString());
      return 1;
    }
    locks.push_back(std::move(lock).value());
  }
  auto catalog = catalog::Catalog::Open(cfg.daemon.catalog_path);
  if (!catalog.ok()) {
    spdlog::critical("catalog {}: {}", cfg.daemon.catalog_path, catalog.status().ToString());
    return 1;
  }
  arrays::BackendSet backends;
  if (Status s = arrays::AddConfiguredBackends(cfg, backends); !s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 2;  // a configuration problem, like a parse error
  }

  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  // A guest still frozen for a job of a daemon that died mid-job is thawed when its agent's
  // session opens. Links start before the runner exists; the hook runs on the io thread, which
  // runs nothing before io.run(), by when `thaw_leftover` is set.
  std::function<void(std::string, proto::FreezeState)> thaw_leftover;
  auto on_session = [&io, &thaw_leftover](const std::string& vm, const proto::HelloReply& hello) {
    if (!hello.freeze_state.frozen) return;
    asio::post(io, [&thaw_leftover, vm, state = hello.freeze_state] {
      if (thaw_leftover) thaw_leftover(vm, state);
    });
  };
  jobs::GuestRegistry guests;
  for (const auto& g : cfg.guests) {
    link::LinkOptions lo;
    lo.guest_name = g.name;
    auto endpoint = link::ParseEndpoint(g.agent.ToString());
    if (!endpoint.ok()) {
      spdlog::critical("guest {}: {}", g.name, endpoint.status().ToString());
      return 1;
    }
    lo.endpoint = *endpoint;
    lo.host_name = host;
    lo.daemon_version = kDaemonVersion;
    lo.on_session = [on_session, vm = g.name](const proto::HelloReply& hello) {
      on_session(vm, hello);
    };
    jobs::Guest guest;
    guest.spec.name = g.name;
    guest.spec.endpoint = g.agent.ToString();
    for (const auto& lun : g.luns) {
      guest.spec.luns.push_back(arrays::LunSpec{lun.backend, lun.volume, lun.wwn});
      if (!lun.disk.empty()) guest.spec.disk_map[lun.disk] = lun.volume;
    }
    guest.link = link::GuestLink::Create(io.get_executor(), lo);
    if (Status s = guests.Add(guest); !s.ok()) {
      spdlog::critical("{}", s.ToString());
      return 1;
    }
    guest.link->Start();
  }
  std::unique_ptr<discovery::Discovery> libvirt;
  if (cfg.libvirt.enabled) {
    auto connected = discovery::Discovery::Connect(cfg.libvirt);
    if (!connected.ok()) {
      spdlog::critical("libvirt discovery: {}", connected.status().ToString());
      return 1;
    }
    libvirt = std::move(connected).value();
  }
  jobs::JobRunner runner(io.get_executor(), workers.get_executor(), backends, **catalog, guests,
                         RunnerOptions(cfg));
  thaw_leftover = [&io, &runner](std::string vm, proto::FreezeState state) {
    asio::co_spawn(io, runner.ThawLeftoverFreeze(std::move(vm), std::move(state)), asio::detached);
  };
  control::ControlOptions co;
  co.socket_path = cfg.daemon.control_socket;
  co.mode = cfg.daemon.control_socket_mode;
  co.group = cfg.daemon.control_socket_group;
  control::ControlServer server(io.get_executor(), runner, guests, co);
  std::unique_ptr<quiesced::LibvirtGuestSync> guest_sync;
  if (libvirt) {
    guest_sync = std::make_unique<quiesced::LibvirtGuestSync>(
        io.get_executor(), workers.get_executor(), *libvirt, guests,
        [&runner](const std::string& vm) { return !runner.BusyJob(vm).empty(); },
        quiesced::GuestSyncOptions{.uri = cfg.libvirt.uri,
                                   .host_name = host,
                                   .daemon_version = kDaemonVersion,
                                   .busy_poll = std::chrono::milliseconds(100),
                                   .on_session = on_session});
  }

  int exit_code = 0;
  asio::co_spawn(
      io,
      [](jobs::JobRunner& runner, control::ControlServer& server,
         quiesced::LibvirtGuestSync* guest_sync, const std::string* uri, int& exit_code,
         asio::io_context& io) -> asio::awaitable<void> {
        Status started = server.Start();
        if (!started.ok()) {
          spdlog::critical("{}", started.ToString());
          exit_code = 1;
          io.stop();
          co_return;
        }
        if (guest_sync != nullptr) {
          Status watching = guest_sync->Start([uri](Status listed) {
            if (listed.ok()) {
              spdlog::info("libvirt discovery at {}: running domains adopted", *uri);
            } else {
              spdlog::error("libvirt discovery at {}: {}", *uri, listed.ToString());
            }
          });
          if (!watching.ok()) {
            spdlog::critical("libvirt discovery: {}", watching.ToString());
            exit_code = 1;
            io.stop();
            co_return;
          }
        }
        spdlog::info("{} ready", kDaemonVersion);
        Status reconciled = co_await runner.Reconcile();
        if (!reconciled.ok()) spdlog::error("reconcile: {}", reconciled.ToString());
      }(runner, server, guest_sync.get(), &cfg.libvirt.uri, exit_code, io),
      asio::detached);

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: thawing and stopping", signal);
    asio::co_spawn(
        io,
        [](jobs::JobRunner& runner, control::ControlServer& server, jobs::GuestRegistry& guests,
           quiesced::LibvirtGuestSync* guest_sync, asio::io_context& io) -> asio::awaitable<void> {
          server.Stop();
          co_await runner.Shutdown();  // every running job thaws its guests first
          if (guest_sync != nullptr) guest_sync->Stop();
          guests.StopAll();
          // The jobs Shutdown ended have replies still to write: let the sessions write them
          // and close (their clients hang up on the reply), within a bound.
          const auto until = std::chrono::steady_clock::now() + kShutdownReplyGrace;
          asio::steady_timer poll(io);
          while (server.sessions() > 0 && std::chrono::steady_clock::now() < until) {
            poll.expires_after(std::chrono::milliseconds(10));
            co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
          }
          io.stop();
        }(runner, server, guests, guest_sync.get(), io),
        asio::detached);
  });
  asio::signal_set ignore_pipe(io, SIGPIPE);
  ignore_pipe.async_wait([](const boost::system::error_code&, int) {});

  io.run();
  workers.join();
  spdlog::info("stopped");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quiesced: application-consistent array snapshots of VM raw LUNs"};
  std::string config_path(config::kDefaultConfigPath);
  bool foreground = false;
  std::string log_level;
  app.add_option("--config", config_path, "configuration file (TOML)");
  app.add_flag("--foreground", foreground,
               "run in the foreground (the daemon never forks; systemd runs it as Type=simple)");
  app.add_option("--log-level", log_level, "override daemon.log_level");
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);

  auto cfg = config::LoadConfigFile(config_path);
  if (!cfg.ok()) {
    std::cerr << "quiesced: " << cfg.status().ToString() << "\n";
    return 2;
  }
  LogOptions log;
  log.level = log_level.empty() ? cfg->daemon.log_level : log_level;
  SetupLogging("quiesced", log);
  return Run(*cfg);
}
