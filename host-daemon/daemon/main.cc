// quiesced: the host daemon. main() wires everything (no singletons): config, catalog, array
// backends, static guests and their agent links, the job runner, the control socket.
//
// One io_context on the main thread; blocking calls (arrays, SQLite) on a worker pool.
// SIGTERM / SIGINT: running jobs are cut short and every guest they froze is thawed before the
// daemon exits. At start, jobs a killed daemon left running are reconciled.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <iostream>

#include "common/logging.h"
#include "host-daemon/arrays/exec/exec_backend.h"
#include "host-daemon/arrays/reflink/reflink_backend.h"
#include "host-daemon/catalog/catalog.h"
#include "host-daemon/config/config.h"
#include "host-daemon/control/control_server.h"
#include "host-daemon/jobs/job_runner.h"

namespace {

namespace asio = boost::asio;
using namespace qb;

constexpr const char* kDaemonVersion = "quiesced 0.1.0";

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

Status BuildBackends(const config::Config& cfg, arrays::BackendSet& backends) {
  for (const auto& b : cfg.backends) {
    if (b.type == "reflink") {
      arrays::reflink::ReflinkOptions o;
      o.name = b.name;
      o.snapshot_dir = b.snapshot_dir;
      QB_RETURN_IF_ERROR(backends.Add(arrays::reflink::MakeReflinkBackend(o)));
    } else if (b.type == "exec") {
      arrays::exec::ExecOptions o;
      o.name = b.name;
      o.script = b.script;
      o.timeout = b.timeout;
      auto backend = arrays::exec::MakeExecBackend(o);
      if (!backend.ok()) return backend.status().WithContext("backend " + b.name);
      QB_RETURN_IF_ERROR(backends.Add(std::move(backend).value()));
    } else {
      return Error(Code::kUnsupported,
                   "backend " + b.name + ": type " + b.type + " is not built into this daemon");
    }
  }
  return Status::Ok();
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
  std::filesystem::create_directories(std::filesystem::path(cfg.daemon.catalog_path).parent_path(),
                                      ignored);
  auto catalog = catalog::Catalog::Open(cfg.daemon.catalog_path);
  if (!catalog.ok()) {
    spdlog::critical("catalog {}: {}", cfg.daemon.catalog_path, catalog.status().ToString());
    return 1;
  }
  arrays::BackendSet backends;
  if (Status s = BuildBackends(cfg, backends); !s.ok()) {
    spdlog::critical("{}", s.ToString());
    return 1;
  }

  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
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
    jobs::Guest guest;
    guest.spec.name = g.name;
    guest.spec.endpoint = g.agent.ToString();
    for (const auto& lun : g.luns)
      guest.spec.luns.push_back(arrays::LunSpec{lun.backend, lun.volume, lun.wwn});
    guest.link = link::GuestLink::Create(io.get_executor(), lo);
    if (Status s = guests.Add(guest); !s.ok()) {
      spdlog::critical("{}", s.ToString());
      return 1;
    }
    guest.link->Start();
  }
  if (cfg.libvirt.enabled) {
    spdlog::warn(
        "libvirt discovery ({}) is not wired into quiesced yet; only static guests are "
        "served",
        cfg.libvirt.uri);
  }

  jobs::JobRunner runner(io.get_executor(), workers.get_executor(), backends, **catalog, guests,
                         RunnerOptions(cfg));
  control::ControlOptions co;
  co.socket_path = cfg.daemon.control_socket;
  co.mode = cfg.daemon.control_socket_mode;
  co.group = cfg.daemon.control_socket_group;
  std::filesystem::create_directories(std::filesystem::path(co.socket_path).parent_path(), ignored);
  control::ControlServer server(io.get_executor(), runner, guests, co);

  int exit_code = 0;
  asio::co_spawn(
      io,
      [](jobs::JobRunner& runner, control::ControlServer& server, int& exit_code,
         asio::io_context& io) -> asio::awaitable<void> {
        Status started = server.Start();
        if (!started.ok()) {
          spdlog::critical("{}", started.ToString());
          exit_code = 1;
          io.stop();
          co_return;
        }
        spdlog::info("{} ready", kDaemonVersion);
        Status reconciled = co_await runner.Reconcile();
        if (!reconciled.ok()) spdlog::error("reconcile: {}", reconciled.ToString());
      }(runner, server, exit_code, io),
      asio::detached);

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: thawing and stopping", signal);
    asio::co_spawn(
        io,
        [](jobs::JobRunner& runner, control::ControlServer& server, jobs::GuestRegistry& guests,
           asio::io_context& io) -> asio::awaitable<void> {
          server.Stop();
          co_await runner.Shutdown();  // every running job thaws its guests first
          guests.StopAll();
          io.stop();
        }(runner, server, guests, io),
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
