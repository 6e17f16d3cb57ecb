#include "host-daemon/link/endpoint.h"

#include <gtest/gtest.h>

namespace qb::link {
namespace {

TEST(Endpoint, ParsesUnixAndVsock) {
  auto unix_ep = ParseEndpoint("unix:/run/qb/vm1.sock");
  ASSERT_TRUE(unix_ep.ok()) << unix_ep.status().ToString();
  EXPECT_EQ(unix_ep->kind, Endpoint::Kind::kUnix);
  EXPECT_EQ(unix_ep->path, "/run/qb/vm1.sock");
  EXPECT_EQ(FormatEndpoint(*unix_ep), "unix:/run/qb/vm1.sock");

  auto vsock = ParseEndpoint("vsock:42:5000");
  ASSERT_TRUE(vsock.ok()) << vsock.status().ToString();
  EXPECT_EQ(vsock->kind, Endpoint::Kind::kVsock);
  EXPECT_EQ(vsock->cid, 42u);
  EXPECT_EQ(vsock->port, 5000u);
  EXPECT_EQ(FormatEndpoint(*vsock), "vsock:42:5000");
}

TEST(Endpoint, RefusesTheHostAndReservedCids) {
  for (const char* text : {"vsock:2:5000", "vsock:1:5000", "vsock:0:5000", "vsock:4294967295:1"}) {
    auto ep = ParseEndpoint(text);
    EXPECT_FALSE(ep.ok()) << text;
    EXPECT_EQ(ep.status().code(), Code::kInvalidArgument) << text;
  }
  EXPECT_TRUE(ParseEndpoint("vsock:3:1").ok());
}

TEST(Endpoint, RefusesMalformedText) {
  for (const char* text :
       {"", "tcp:1.2.3.4:5", "unix:", "unix:relative/path", "vsock:", "vsock:3", "vsock:x:1",
        "vsock:3:", "vsock:3:1:2", "vsock:-3:1", "vsock:99999999999:1"}) {
    EXPECT_FALSE(ParseEndpoint(text).ok()) << text;
  }
  EXPECT_FALSE(ParseEndpoint("unix:/" + std::string(200, 'a')).ok());
}

TEST(Endpoint, SocketAddressFamilies) {
  auto unix_addr = ToSocketAddress(*ParseEndpoint("unix:/tmp/x.sock"));
  EXPECT_EQ(unix_addr.protocol().family(), AF_UNIX);
  auto vsock_addr = ToSocketAddress(*ParseEndpoint("vsock:7:9"));
  EXPECT_EQ(vsock_addr.protocol().family(), AF_VSOCK);
}

}  // namespace
}  // namespace qb::link
