// The agent's listening transports on Linux: virtio-serial port (production), vsock, and a
// unix socket (tests, debugging). The agent is always the server side; each connection (or,
// for the port, the one byte stream) runs an AgentSession.
#pragma once

#include <spdlog/logger.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <memory>
#include <string>

#include "common/status.h"
#include "guest-agent/agent_service.h"

namespace qb::agent {

// Default vsock port the agent listens on (host connects to CID:port). Any unprivileged value
// works; 4470 is not registered with IANA and not used by qemu-ga (which uses virtio-serial).
inline constexpr unsigned kDefaultVsockPort = 4470;
inline constexpr const char* kDefaultPortName = "org.quiesce-bridge.agent.0";

// The device node of the virtio-serial port called `name`: `dev_dir`/virtio-ports/NAME when
// udev made the symlink, else the vportNpM whose `sys_dir`/class/virtio-ports/*/name matches.
// kNotFound when there is none.
Result<std::string> FindVirtioPort(const std::string& name, const std::string& dev_dir = "/dev",
                                   const std::string& sys_dir = "/sys");

// AF_VSOCK endpoint for (cid, port) as an Asio generic endpoint. VMADDR_CID_ANY to listen.
boost::asio::generic::stream_protocol::endpoint VsockEndpoint(unsigned cid, unsigned port);

// Each Serve* runs until cancelled (io_context stopped). `service` and `log` outlive them.

// Listens on a unix socket at `path` (replacing a stale socket file, mode 0600).
boost::asio::awaitable<void> ServeUnixSocket(std::string path, AgentService& service,
                                             std::shared_ptr<spdlog::logger> log);

// Serves the virtio-serial port called `port_name` (found with FindVirtioPort, retried until it
// appears). At EOF (no host connected) it waits kPortIdlePoll and reads again.
boost::asio::awaitable<void> ServeVirtioPort(std::string port_name, AgentService& service,
                                             std::shared_ptr<spdlog::logger> log,
                                             std::string dev_dir = "/dev",
                                             std::string sys_dir = "/sys");

// Listens on AF_VSOCK port `port` for any CID.
boost::asio::awaitable<void> ServeVsock(unsigned port, AgentService& service,
                                        std::shared_ptr<spdlog::logger> log);

}  // namespace qb::agent
