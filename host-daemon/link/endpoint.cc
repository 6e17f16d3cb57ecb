#include "host-daemon/link/endpoint.h"

#include <charconv>

namespace qb::link {
namespace {

// sockaddr_un.sun_path is 108 bytes including the terminating NUL.
constexpr std::size_t kMaxUnixPath = 107;
constexpr std::uint32_t kFirstGuestCid = 3;  // 0: hypervisor, 1: local, 2: host

Result<std::uint32_t> ParseU32(std::string_view text, std::string_view what) {
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Error(Code::kInvalidArgument,
                 "endpoint: " + std::string(what) + " '" + std::string(text) + "' is not a number");
  }
  return value;
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  constexpr std::string_view kUnix = "unix:";
  constexpr std::string_view kVsock = "vsock:";
  if (text.starts_with(kUnix)) {
    Endpoint e;
    e.kind = Endpoint::Kind::kUnix;
    e.path = std::string(text.substr(kUnix.size()));
    if (e.path.empty() || e.path.front() != '/')
      return Error(Code::kInvalidArgument, "endpoint: unix socket path must be absolute");
    if (e.path.size() > kMaxUnixPath)
      return Error(Code::kInvalidArgument, "endpoint: unix socket path longer than 107 bytes");
    if (e.path.find('\0') != std::string::npos)
      return Error(Code::kInvalidArgument, "endpoint: unix socket path contains NUL");
    return e;
  }
  if (text.starts_with(kVsock)) {
    auto rest = text.substr(kVsock.size());
    auto colon = rest.find(':');
    if (colon == std::string_view::npos)
      return Error(Code::kInvalidArgument, "endpoint: vsock endpoint must be vsock:CID:PORT");
    auto cid = ParseU32(rest.substr(0, colon), "CID");
    if (!cid.ok()) return cid.status();
    auto port = ParseU32(rest.substr(colon + 1), "port");
    if (!port.ok()) return port.status();
    if (*cid < kFirstGuestCid) {
      return Error(Code::kInvalidArgument,
                   "endpoint: vsock CID " + std::to_string(*cid) +
                       " is reserved (0-2; 2 is the host itself), guests have CID >= 3");
    }
    if (*cid == 0xffffffffu)
      return Error(Code::kInvalidArgument, "endpoint: vsock CID -1 (any) is not a guest");
    Endpoint e;
    e.kind = Endpoint::Kind::kVsock;
    e.cid = *cid;
    e.port = *port;
    return e;
  }
  return Error(Code::kInvalidArgument,
               "endpoint: '" + std::string(text) + "' must start with unix: or vsock:");
}

std::string FormatEndpoint(const Endpoint& endpoint) {
  if (endpoint.kind == Endpoint::Kind::kUnix) return "unix:" + endpoint.path;
  return "vsock:" + std::to_string(endpoint.cid) + ":" + std::to_string(endpoint.port);
}

}  // namespace qb::link
