// Where a guest's agent listens, as the config and libvirt discovery spell it:
// "unix:/run/qb/vm1.sock" (the host end of a virtio-serial chardev, or a test agent) or
// "vsock:CID:PORT".
#pragma once

#include <boost/asio/generic/stream_protocol.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace qb::link {

struct Endpoint {
  enum class Kind { kUnix, kVsock };
  Kind kind = Kind::kUnix;
  std::string path;        // kUnix: socket path (absolute)
  std::uint32_t cid = 0;   // kVsock: the guest's context id (>= 3; 2 is the host itself)
  std::uint32_t port = 0;  // kVsock: the agent's port
  bool operator==(const Endpoint&) const = default;
};

// Parses "unix:/abs/path" or "vsock:CID:PORT". Fails with kInvalidArgument naming what is wrong:
// unknown scheme, relative or over-long path, non-numeric or out-of-range numbers, and the
// reserved CIDs 0, 1 and 2 (2 is the host: the daemon never connects to itself through vsock).
Result<Endpoint> ParseEndpoint(std::string_view text);

// The inverse of ParseEndpoint.
std::string FormatEndpoint(const Endpoint& endpoint);

// The socket address for `endpoint` (AF_UNIX or AF_VSOCK). Defined per platform
// (endpoint_linux.cc). Precondition: `endpoint` came from ParseEndpoint.
boost::asio::generic::stream_protocol::endpoint ToSocketAddress(const Endpoint& endpoint);

}  // namespace qb::link
