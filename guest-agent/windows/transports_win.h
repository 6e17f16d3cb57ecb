// The Windows agent's transports. The agent is always the server side; each connection (or, for
// the virtio-serial port, the one byte stream) runs an AgentSession (guest-agent/agent_session.h).
//   - virtio-serial port \\.\Global\org.quiesce-bridge.agent.0 (vioser driver): production on
//     KVM. Overlapped I/O through asio::windows::stream_handle.
//   - hv_sock (AF_HYPERV) listener: Hyper-V hosts.
//   - vsock listener through virtio-win's viosock provider (its address family is assigned at
//     install time, so it is configured, not a constant).
//   - a named pipe: tests (stands in for the serial port under Wine) and local debugging.
// Platform file: only the .cc includes <windows.h> / <winsock2.h>.
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/windows/stream_handle.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "guest-agent/agent_service.h"

namespace qb::agent::win {

inline constexpr const char* kVirtioPortPath = "\\\\.\\Global\\org.quiesce-bridge.agent.0";
// Same port as the Linux agent (guest-agent/linux/transports.h) for vsock; hv_sock uses the
// vsock-compatible service id of this port (HvServiceIdForPort).
inline constexpr unsigned kDefaultVsockPort = 4470;
inline constexpr int kAfHyperV = 34;  // AF_HYPERV (ws2def.h on new SDKs; mingw lacks it)
inline constexpr int kHvProtocolRaw = 1;

// A GUID as its 16 bytes in Windows memory order (Data1..3 little-endian, Data4 as is).
using GuidBytes = std::array<std::uint8_t, 16>;

// Parses "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" (braces optional). kInvalidArgument if malformed.
Result<GuidBytes> ParseGuid(const std::string& text);
// Lower-case text form without braces.
std::string FormatGuid(const GuidBytes& guid);

// The Hyper-V socket service id Linux-style vsock ports map to: {PORT-facb-11e6-bd58-64006a7986d3}.
GuidBytes HvServiceIdForPort(unsigned port);

// SOCKADDR_HV { AF_HYPERV, reserved, VmId, ServiceId } as a generic endpoint. An all-zero VmId
// (HV_GUID_WILDCARD) listens for any partition.
boost::asio::generic::stream_protocol::endpoint HvSocketEndpoint(const GuidBytes& vm_id,
                                                                 const GuidBytes& service_id);

// sockaddr_vm { family, reserved, port, cid, zero[4] } for viosock's address family `af`.
// VMADDR_CID_ANY (0xffffffff) listens on any CID.
boost::asio::generic::stream_protocol::endpoint VsockEndpoint(int af, std::uint32_t cid,
                                                              std::uint32_t port);

// Opens `path` (a virtio-serial port or a pipe client end) for overlapped I/O. kNotFound when it
// does not exist, kBusy when another process holds it, kIoError otherwise.
Result<boost::asio::windows::stream_handle> OpenOverlappedFile(boost::asio::any_io_executor ex,
                                                               const std::string& path);

// Creates one server instance of the named pipe `name` ("\\.\pipe\..."), local clients only,
// and waits until a client connects. kIoError if the pipe cannot be made.
boost::asio::awaitable<Result<boost::asio::windows::stream_handle>> AcceptPipeClient(
    std::string name);

// Each Serve* runs until cancelled (io_context stopped). `service` and `log` must outlive it.

// Serves the virtio-serial port at `path`, reopening it (after kTransportRetry) when it is
// missing or fails; at end of stream (no host) it waits kTransportRetry and reads again.
boost::asio::awaitable<void> ServeVirtioPort(std::string path, AgentService& service,
                                             std::shared_ptr<spdlog::logger> log);

// Serves named pipe `name`: one session per client, several clients at once.
boost::asio::awaitable<void> ServeNamedPipe(std::string name, AgentService& service,
                                            std::shared_ptr<spdlog::logger> log);

// Listens on `endpoint` (HvSocketEndpoint / VsockEndpoint) with `protocol`; one session per
// connection. Returns at once with kUnsupported if the address family does not exist here
// (no Hyper-V sockets / no viosock); otherwise runs until cancelled.
boost::asio::awaitable<Status> ServeSocket(boost::asio::generic::stream_protocol::endpoint endpoint,
                                           int protocol, AgentService& service,
                                           std::shared_ptr<spdlog::logger> log);

}  // namespace qb::agent::win
