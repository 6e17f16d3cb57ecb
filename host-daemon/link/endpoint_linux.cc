// Linux socket addresses for agent endpoints. The only file of the link that includes
// <linux/vm_sockets.h>.
#include <sys/socket.h>
#include <sys/un.h>
// clang-format off
#include <linux/vm_sockets.h>
// clang-format on

#include <cstring>

#include "host-daemon/link/endpoint.h"

namespace qb::link {

boost::asio::generic::stream_protocol::endpoint ToSocketAddress(const Endpoint& endpoint) {
  using Generic = boost::asio::generic::stream_protocol::endpoint;
  if (endpoint.kind == Endpoint::Kind::kUnix) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, endpoint.path.data(),
                std::min(endpoint.path.size(), sizeof(addr.sun_path) - 1));
    return Generic(&addr, sizeof(addr), 0);
  }
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = endpoint.cid;
  addr.svm_port = endpoint.port;
  return Generic(&addr, sizeof(addr), 0);
}

}  // namespace qb::link
