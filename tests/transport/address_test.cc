#include <gtest/gtest.h>
#include <netinet/in.h>

#include "base/error.h"
#include "transport/socket/address.h"

namespace eccl {
namespace {

TEST(SocketAddress, ParsesIpv4AndPrintsIt) {
  auto a = SocketAddress::parse("127.0.0.1:29500");
  EXPECT_EQ(a.family(), AF_INET);
  EXPECT_EQ(a.port(), 29500);
  EXPECT_EQ(a.str(), "127.0.0.1:29500");
}

TEST(SocketAddress, ParsesBracketedIpv6) {
  auto a = SocketAddress::parse("[::1]:80");
  EXPECT_EQ(a.family(), AF_INET6);
  EXPECT_EQ(a.host(), "::1");
  EXPECT_EQ(a.str(), "[::1]:80");
}

TEST(SocketAddress, ResolvesNamesAndBrackets) {
  EXPECT_EQ(SocketAddress::resolve("[::1]", 5).str(), "[::1]:5");
  auto local = SocketAddress::resolve("localhost", 7);
  EXPECT_EQ(local.port(), 7);
  EXPECT_TRUE(local.family() == AF_INET || local.family() == AF_INET6);
}

TEST(SocketAddress, WithPortKeepsHost) {
  auto a = SocketAddress::parse("[::1]:1").withPort(65535);
  EXPECT_EQ(a.str(), "[::1]:65535");
}

TEST(SocketAddress, RejectsMalformedTextNamingIt) {
  for (const char* bad : {"127.0.0.1", "::1:80", "[::1]80", "[::1", "host:", "host:99999", "host:12x", ":80"}) {
    try {
      SocketAddress::parse(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

TEST(SocketAddress, UnresolvableHostIsAnError) {
  EXPECT_THROW(SocketAddress::parse("no-such-host.invalid:1"), Error);
}

}  // namespace
}  // namespace eccl
