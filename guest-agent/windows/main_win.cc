// quiesce-agent.exe: the Windows guest agent. main() wires everything (no singletons).
//   quiesce-agent.exe                 started by the SCM: runs as the service
//   quiesce-agent.exe --console       runs in the foreground until Ctrl-C
//   quiesce-agent.exe --install       registers the VSS provider (COM+ application + VSS)
//   quiesce-agent.exe --uninstall     removes that registration
// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>

#include "common/logging.h"
#include "guest-agent/windows/service_win.h"
#include "guest-agent/windows/transports_win.h"
#include "guest-agent/windows/volume_inventory.h"
#include "guest-agent/windows/vss/named_event_hold.h"
#include "guest-agent/windows/vss/provider_ids.h"
#include "guest-agent/windows/vss/provider_registration_com.h"
#include "guest-agent/windows/vss/vss_com.h"
#include "guest-agent/windows/vss/vss_requester.h"
#include "guest-agent/windows/vss_agent_service.h"

namespace qb::agent::win {
namespace {

namespace asio = boost::asio;

struct AgentOptions {
  std::string virtio_port = kVirtioPortPath;
  bool no_virtio = false;
  std::string pipe;        // also serve this named pipe (tests, debugging)
  bool hv_socket = false;  // listen on AF_HYPERV (Hyper-V hosts)
  int vsock_af = 0;        // viosock's address family (0: no vsock listener)
  unsigned vsock_port = kDefaultVsockPort;
  LogOptions log;
  bool register_provider = true;  // first start: register the provider if it is missing
};

std::string ExeDirectory() {
  char path[MAX_PATH];
  DWORD n = GetModuleFileNameA(nullptr, path, MAX_PATH);
  std::string p(path, n);
  auto slash = p.find_last_of("\\/");
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string ProviderDllPath() { return ExeDirectory() + "\\qb-vss-provider.dll"; }

void EnsureProviderRegistered(spdlog::logger& log) {
  auto catalog = MakeComPlusProviderCatalog();
  auto exists = catalog->ApplicationExists(kComPlusApplication);
  if (exists.ok() && *exists) return;
  Status s = exists.ok() ? InstallProvider(*catalog, ProviderDllPath()) : exists.status();
  if (s.ok()) {
    log.info("registered the VSS provider ({})", ProviderDllPath());
  } else {
    log.warn(
        "VSS provider not registered ({}); freezes will fail until `quiesce-agent "
        "--install` succeeds",
        s.ToString());
  }
}

// Runs the agent until `install_stop` 's callback is called. Returns the process exit code.
int RunAgent(const AgentOptions& options, const std::function<void()>& on_serving,
             const std::function<void(std::function<void()>)>& install_stop) {
  auto log = SetupLogging("quiesce-agent", options.log);
  Status com = InitializeComForVss();
  if (!com.ok()) log->warn("{}", com.ToString());
  if (options.register_provider) EnsureProviderRegistered(*log);

  asio::io_context io(1);
  auto factory = MakeComVssBackupFactory();
  NamedEventProviderLink provider;
  VssRequester requester(*factory, provider);
  auto inventory = MakeWindowsInventory();
  VssAgentServiceOptions service_options;
  service_options.agent_version = "0.1.0";
  service_options.os = WindowsOsInfo();
  service_options.logger = log;
  VssAgentService service(io.get_executor(), requester, *inventory, service_options);

  if (!options.no_virtio) {
    asio::co_spawn(io, ServeVirtioPort(options.virtio_port, service, log), asio::detached);
  }
  if (!options.pipe.empty()) {
    asio::co_spawn(io, ServeNamedPipe(options.pipe, service, log), asio::detached);
  }
  auto serve_socket = [&](boost::asio::generic::stream_protocol::endpoint endpoint, int protocol,
                          const char* what) {
    asio::co_spawn(
        io,
        [&service, log, endpoint, protocol, what]() -> asio::awaitable<void> {
          Status s = co_await ServeSocket(endpoint, protocol, service, log);
          log->warn("{} listener: {}", what, s.ToString());
        },
        asio::detached);
  };
  if (options.hv_socket) {
    serve_socket(HvSocketEndpoint(GuidBytes{}, HvServiceIdForPort(options.vsock_port)),
                 kHvProtocolRaw, "hv_sock");
  }
  if (options.vsock_af > 0) {
    serve_socket(VsockEndpoint(options.vsock_af, 0xffffffffu, options.vsock_port), 0, "vsock");
  }
  install_stop([&io, &service] {
    asio::post(io, [&io, &service] {
      service.Shutdown();  // thaws a held freeze before the transports go away
      io.stop();
    });
  });
  on_serving();
  log->info("quiesce-agent serving");
  io.run();
  log->info("quiesce-agent stopped");
  return 0;
}

std::function<void()>* g_console_stop = nullptr;  // Ctrl-C handler has no context argument

BOOL WINAPI ConsoleHandler(DWORD) {
  if (g_console_stop && *g_console_stop) (*g_console_stop)();
  return TRUE;
}

}  // namespace
}  // namespace qb::agent::win

int main(int argc, char** argv) {
  using namespace qb::agent::win;
  CLI::App app{"quiesce-bridge guest agent for Windows"};
  AgentOptions options;
  bool install = false, uninstall = false, console = false;
  app.add_flag("--install", install, "register the VSS provider and exit");
  app.add_flag("--uninstall", uninstall, "remove the VSS provider registration and exit");
  app.add_flag("--console", console, "run in the foreground instead of as a service");
  app.add_option("--virtio-port", options.virtio_port, "virtio-serial port path");
  app.add_flag("--no-virtio", options.no_virtio, "do not serve the virtio-serial port");
  app.add_option("--pipe", options.pipe, "also serve this named pipe (\\\\.\\pipe\\NAME)");
  app.add_flag("--hv-socket", options.hv_socket, "listen on AF_HYPERV");
  app.add_option("--vsock-af", options.vsock_af, "viosock address family (0: off)");
  app.add_option("--vsock-port", options.vsock_port, "vsock / hv_sock port");
  app.add_option("--log-file", options.log.file, "log file");
  app.add_option("--log-level", options.log.level, "trace|debug|info|warn|error");
  app.add_flag("!--no-register", options.register_provider,
               "do not register the VSS provider at start");
  CLI11_PARSE(app, argc, argv);

  if (install || uninstall) {
    qb::Status com = InitializeComForVss();
    if (!com.ok()) std::fprintf(stderr, "%s\n", com.ToString().c_str());
    auto catalog = MakeComPlusProviderCatalog();
    qb::Status s =
        install ? InstallProvider(*catalog, ProviderDllPath()) : UninstallProvider(*catalog);
    std::printf("%s: %s\n", install ? "install" : "uninstall", s.ToString().c_str());
    return s.ok() ? 0 : 1;
  }
  if (console) {
    std::function<void()> stop;
    g_console_stop = &stop;
    SetConsoleCtrlHandler(ConsoleHandler, TRUE);
    return RunAgent(
        options, [] {}, [&stop](std::function<void()> s) { stop = std::move(s); });
  }
  if (options.log.file.empty()) {
    options.log.to_stderr = false;
    options.log.file = "C:\\ProgramData\\quiesce-bridge\\agent.log";
    CreateDirectoryA("C:\\ProgramData\\quiesce-bridge", nullptr);
  }
  qb::Status s = RunAsService(kServiceName, [&](ServiceLifecycle& lifecycle, auto set_stop) {
    return RunAgent(
        options, [&lifecycle] { lifecycle.Running(); }, set_stop);
  });
  if (!s.ok()) {
    std::fprintf(stderr, "%s\nRun with --console to start in the foreground, --help for more.\n",
                 s.ToString().c_str());
    return 2;
  }
  return 0;
}
