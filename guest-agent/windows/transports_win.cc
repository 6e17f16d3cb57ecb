#include "guest-agent/windows/transports_win.h"

// clang-format off
#include <winsock2.h>
#include <windows.h>
// clang-format on

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/windows/overlapped_ptr.hpp>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "guest-agent/agent_session.h"
#include "guest-agent/windows/windows_limits.h"

namespace qb::agent::win {

namespace asio = boost::asio;
using asio::generic::stream_protocol;

namespace {

std::wstring Widen(const std::string& s) {
  if (s.empty()) return {};
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), w.data(), n);
  return w;
}

std::string Win32Message(DWORD code) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "win32 error %lu", static_cast<unsigned long>(code));
  return buf;
}

asio::awaitable<void> Sleep(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

template <typename Stream>
void StartSession(Stream stream, AgentService& service, std::shared_ptr<spdlog::logger> log,
                  std::string what) {
  auto session = std::make_shared<AgentSession<Stream>>(std::move(stream), service, log);
  auto ex = session->channel().stream().get_executor();
  asio::co_spawn(
      ex,
      [session, log, what]() -> asio::awaitable<void> {
        Status ended = co_await session->Run();
        log->info("{}: session ended: {}", what, ended.ToString());
      },
      asio::detached);
}

void PutLe16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
void PutLe32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace

Result<GuidBytes> ParseGuid(const std::string& text) {
  std::string t = text;
  if (t.size() == 38 && t.front() == '{' && t.back() == '}') t = t.substr(1, 36);
  if (t.size() != 36 || t[8] != '-' || t[13] != '-' || t[18] != '-' || t[23] != '-') {
    return Error(Code::kInvalidArgument, "not a GUID: " + text);
  }
  std::string hex;
  for (char c : t) {
    if (c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Error(Code::kInvalidArgument, "not a GUID: " + text);
    }
    hex.push_back(c);
  }
  std::uint8_t be[16];
  for (int i = 0; i < 16; ++i)
    be[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  GuidBytes g{};
  // Data1 (4), Data2 (2), Data3 (2) are little-endian in memory; Data4 (8) as written.
  g[0] = be[3], g[1] = be[2], g[2] = be[1], g[3] = be[0];
  g[4] = be[5], g[5] = be[4];
  g[6] = be[7], g[7] = be[6];
  for (int i = 8; i < 16; ++i) g[i] = be[i];
  return g;
}

std::string FormatGuid(const GuidBytes& g) {
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2],
                g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14],
                g[15]);
  return buf;
}

GuidBytes HvServiceIdForPort(unsigned port) {
  char text[40];
  std::snprintf(text, sizeof text, "%08x-facb-11e6-bd58-64006a7986d3", port);
  return ParseGuid(text).value();
}

stream_protocol::endpoint HvSocketEndpoint(const GuidBytes& vm_id, const GuidBytes& service_id) {
  // SOCKADDR_HV: ADDRESS_FAMILY Family; USHORT Reserved; GUID VmId; GUID ServiceId.
  std::uint8_t addr[36] = {};
  PutLe16(addr, static_cast<std::uint16_t>(kAfHyperV));
  std::memcpy(addr + 4, vm_id.data(), 16);
  std::memcpy(addr + 20, service_id.data(), 16);
  return stream_protocol::endpoint(addr, sizeof addr, kHvProtocolRaw);
}

stream_protocol::endpoint VsockEndpoint(int af, std::uint32_t cid, std::uint32_t port) {
  // sockaddr_vm: unsigned short svm_family, svm_reserved1; unsigned int svm_port, svm_cid;
  // unsigned char svm_zero[4].
  std::uint8_t addr[16] = {};
  PutLe16(addr, static_cast<std::uint16_t>(af));
  PutLe32(addr + 4, port);
  PutLe32(addr + 8, cid);
  return stream_protocol::endpoint(addr, sizeof addr, 0);
}

Result<asio::windows::stream_handle> OpenOverlappedFile(asio::any_io_executor ex,
                                                        const std::string& path) {
  HANDLE h = CreateFileW(Widen(path).c_str(), GENERIC_READ | GENERIC_WRITE, 0, nullptr,
                         OPEN_EXISTING, FILE_FLAG_OVERLAPPED, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    const DWORD err = GetLastError();
    if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) {
      return Error(Code::kNotFound, path + ": no such device or pipe");
    }
    if (err == ERROR_SHARING_VIOLATION || err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY) {
      return Error(Code::kBusy, path + ": in use (" + Win32Message(err) + ")");
    }
    return Error(Code::kIoError, path + ": " + Win32Message(err));
  }
  asio::windows::stream_handle handle(ex);
  boost::system::error_code ec;
  handle.assign(h, ec);  // owns h from here, also on error
  if (ec) return Error(Code::kIoError, path + ": " + ec.message());
  return handle;
}

asio::awaitable<Result<asio::windows::stream_handle>> AcceptPipeClient(std::string name) {
  auto ex = co_await asio::this_coro::executor;
  HANDLE h =
      CreateNamedPipeW(Widen(name).c_str(), PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                       PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                       PIPE_UNLIMITED_INSTANCES, 64 * 1024, 64 * 1024, 0, nullptr);
  if (h == INVALID_HANDLE_VALUE) {
    co_return Error(Code::kIoError,
                    "CreateNamedPipe " + name + ": " + Win32Message(GetLastError()));
  }
  asio::windows::stream_handle pipe(ex);
  boost::system::error_code assign_ec;
  pipe.assign(h, assign_ec);
  if (assign_ec) co_return Error(Code::kIoError, "assign " + name + ": " + assign_ec.message());

  // The overlapped ConnectNamedPipe completes through the io_context's completion port; the
  // timer only carries that completion back into this coroutine.
  struct Wait {
    explicit Wait(asio::any_io_executor e) : done(e, asio::steady_timer::time_point::max()) {}
    asio::steady_timer done;
    bool finished = false;
    boost::system::error_code ec;
  };
  auto wait = std::make_shared<Wait>(ex);
  asio::windows::overlapped_ptr op(ex, [wait](boost::system::error_code ec, std::size_t) {
    wait->ec = ec;
    wait->finished = true;
    wait->done.cancel();
  });
  const BOOL connected = ConnectNamedPipe(pipe.native_handle(), op.get());
  const DWORD err = GetLastError();
  if (!connected && err != ERROR_IO_PENDING) {
    // A client that connected between Create and Connect is a success too.
    boost::system::error_code result;
    if (err != ERROR_PIPE_CONNECTED) {
      result.assign(static_cast<int>(err), asio::error::get_system_category());
    }
    op.complete(result, 0);
  } else {
    op.release();
  }
  while (!wait->finished) {
    co_await wait->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  const boost::system::error_code ec = wait->ec;
  if (ec) co_return Error(Code::kIoError, "ConnectNamedPipe " + name + ": " + ec.message());
  co_return std::move(pipe);
}

asio::awaitable<void> ServeNamedPipe(std::string name, AgentService& service,
                                     std::shared_ptr<spdlog::logger> log) {
  log->info("listening on named pipe {}", name);
  for (;;) {
    auto client = co_await AcceptPipeClient(name);
    if (!client.ok()) {
      log->warn("{}", client.status().ToString());
      co_await Sleep(kTransportRetry);
      continue;
    }
    StartSession(std::move(client).value(), service, log, name);
  }
}

asio::awaitable<void> ServeVirtioPort(std::string path, AgentService& service,
                                      std::shared_ptr<spdlog::logger> log) {
  using Session = AgentSession<asio::windows::stream_handle>;
  auto ex = co_await asio::this_coro::executor;
  // A port without a host can fail the same way every retry: say each distinct problem once.
  std::string last_problem;
  for (;;) {
    auto port = OpenOverlappedFile(ex, path);
    if (!port.ok()) {
      if (port.status().ToString() != last_problem) {
        last_problem = port.status().ToString();
        log->warn("virtio-serial port: {}", last_problem);
      }
      co_await Sleep(kTransportRetry);
      continue;
    }
    if (last_problem.empty()) log->info("serving virtio-serial port {}", path);
    auto session = std::make_shared<Session>(std::move(port).value(), service, log);
    for (;;) {
      Status ended = co_await session->Run();
      if (ended.code() == Code::kCancelled) co_return;
      if (ended.code() != Code::kGuestUnreachable) {
        if (ended.ToString() != last_problem) {
          last_problem = ended.ToString();
          log->warn("virtio-serial port {}: {}; reopening", path, last_problem);
        }
        break;
      }
      last_problem.clear();
      // End of stream: no host on the other end right now. Poll, never spin.
      co_await Sleep(kTransportRetry);
    }
    co_await Sleep(kTransportRetry);
  }
}

asio::awaitable<Status> ServeSocket(stream_protocol::endpoint endpoint, int protocol,
                                    AgentService& service, std::shared_ptr<spdlog::logger> log) {
  auto ex = co_await asio::this_coro::executor;
  const stream_protocol proto(endpoint.protocol().family(), protocol);
  asio::basic_socket_acceptor<stream_protocol> acceptor(ex);
  boost::system::error_code ec;
  acceptor.open(proto, ec);
  if (ec) {
    co_return Error(Code::kUnsupported, "address family " + std::to_string(proto.family()) +
                                            " not available: " + ec.message());
  }
  acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) co_return Error(Code::kIoError, "listen: " + ec.message());
  log->info("listening on address family {}", proto.family());
  for (;;) {
    auto [accept_ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (accept_ec == asio::error::operation_aborted) co_return Error(Code::kCancelled, "stopped");
    if (accept_ec) {
      log->warn("accept: {}", accept_ec.message());
      co_await Sleep(kTransportRetry);
      continue;
    }
    StartSession(std::move(socket), service, log, "socket");
  }
}

}  // namespace qb::agent::win
