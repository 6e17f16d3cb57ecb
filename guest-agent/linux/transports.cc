#include "guest-agent/linux/transports.h"

#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "guest-agent/agent_limits.h"
#include "guest-agent/agent_session.h"

namespace qb::agent {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

asio::awaitable<void> Sleep(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

template <typename Socket>
void StartSession(Socket socket, AgentService& service, std::shared_ptr<spdlog::logger> log) {
  auto session = std::make_shared<AgentSession<Socket>>(std::move(socket), service, log);
  asio::co_spawn(
      session->channel().stream().get_executor(),
      [session, log]() -> asio::awaitable<void> {
        Status ended = co_await session->Run();
        log->info("connection closed: {}", ended.ToString());
      },
      asio::detached);
}

}  // namespace

Result<std::string> FindVirtioPort(const std::string& name, const std::string& dev_dir,
                                   const std::string& sys_dir) {
  std::error_code ec;
  fs::path link = fs::path(dev_dir) / "virtio-ports" / name;
  if (fs::exists(link, ec)) return link.string();
  fs::path cls = fs::path(sys_dir) / "class" / "virtio-ports";
  for (const auto& entry : fs::directory_iterator(cls, ec)) {
    std::ifstream in(entry.path() / "name");
    std::string port_name;
    std::getline(in, port_name);
    if (port_name == name) return (fs::path(dev_dir) / entry.path().filename()).string();
  }
  return Error(Code::kNotFound, "no virtio-serial port named " + name);
}

asio::generic::stream_protocol::endpoint VsockEndpoint(unsigned cid, unsigned port) {
  sockaddr_vm address{};
  address.svm_family = AF_VSOCK;
  address.svm_cid = cid;
  address.svm_port = port;
  return asio::generic::stream_protocol::endpoint(&address, sizeof address, 0);
}

asio::awaitable<void> ServeUnixSocket(std::string path, AgentService& service,
                                      std::shared_ptr<spdlog::logger> log) {
  auto ex = co_await asio::this_coro::executor;
  ::unlink(path.c_str());
  asio::local::stream_protocol::acceptor acceptor(ex, asio::local::stream_protocol::endpoint(path));
  ::chmod(path.c_str(), 0600);
  log->info("listening on unix socket {}", path);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      log->warn("accept on {}: {}", path, ec.message());
      co_await Sleep(kTransportRetry);
      continue;
    }
    StartSession(std::move(socket), service, log);
  }
}

asio::awaitable<void> ServeVirtioPort(std::string port_name, AgentService& service,
                                      std::shared_ptr<spdlog::logger> log, std::string dev_dir,
                                      std::string sys_dir) {
  auto ex = co_await asio::this_coro::executor;
  bool reported_missing = false;
  for (;;) {
    auto device = FindVirtioPort(port_name, dev_dir, sys_dir);
    if (!device.ok()) {
      if (!reported_missing) log->warn("{}; waiting for it", device.status().message());
      reported_missing = true;
      co_await Sleep(kTransportRetry);
      continue;
    }
    int fd = ::open(device->c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      log->warn("open {}: {}", *device, std::strerror(errno));
      co_await Sleep(kTransportRetry);
      continue;
    }
    log->info("serving virtio-serial port {} ({})", port_name, *device);
    reported_missing = false;
    using Session = AgentSession<asio::posix::stream_descriptor>;
    auto session = std::make_shared<Session>(asio::posix::stream_descriptor(ex, fd), service, log);
    for (;;) {
      Status ended = co_await session->Run();
      if (ended.code() == Code::kGuestUnreachable) {
        co_await Sleep(kPortIdlePoll);  // no host connected: EOF at once, poll gently
        continue;
      }
      log->warn("port {}: {}; reopening", *device, ended.ToString());
      break;
    }
    co_await Sleep(kTransportRetry);
  }
}

asio::awaitable<void> ServeVsock(unsigned port, AgentService& service,
                                 std::shared_ptr<spdlog::logger> log) {
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    boost::system::error_code ec;
    asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor(ex);
    acceptor.open(asio::generic::stream_protocol(AF_VSOCK, 0), ec);
    if (!ec) acceptor.bind(VsockEndpoint(VMADDR_CID_ANY, port), ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      log->warn("vsock port {}: {}; retrying", port, ec.message());
      co_await Sleep(limits::kReconnectBackoffMax);
      continue;
    }
    log->info("listening on vsock port {}", port);
    for (;;) {
      auto [aec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (aec == asio::error::operation_aborted) co_return;
      if (aec) {
        log->warn("vsock accept: {}", aec.message());
        co_await Sleep(kTransportRetry);
        continue;
      }
      StartSession(std::move(socket), service, log);
    }
  }
}

}  // namespace qb::agent
