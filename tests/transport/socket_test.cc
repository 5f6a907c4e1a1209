#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "base/error.h"
#include "transport/socket/socket.h"
#include "transport/socket/socket_connector.h"

namespace eccl {
namespace {

uint16_t freePort(const char* host) {
  Fd fd = listenTcp(SocketAddress::resolve(host, 0));
  return SocketAddress::ofSocket(fd.get()).port();
}

TEST(Socket, ListenOnPortZeroReportsTheChosenPort) {
  Fd v4 = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
  EXPECT_NE(SocketAddress::ofSocket(v4.get()).port(), 0);
  Fd v6 = listenTcp(SocketAddress::resolve("::1", 0));
  EXPECT_EQ(SocketAddress::ofSocket(v6.get()).host(), "::1");
}

TEST(Socket, ConnectRetriesUntilTheListenerAppears) {
  auto addr = SocketAddress::resolve("127.0.0.1", freePort("127.0.0.1"));
  std::thread late([addr] {
    std::this_thread::sleep_for(Millis(300));
    Fd l = listenTcp(addr);
    std::this_thread::sleep_for(Millis(2000));
  });
  Fd c = connectTcp(addr, Deadline::after(Millis(10000)));
  EXPECT_TRUE(c.valid());
  late.join();
}

TEST(Socket, ConnectGivesUpAtTheDeadlineNamingTheAddress) {
  // Bound but not listening: the port stays refused, and no other test can take it meanwhile.
  Fd held(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto any = SocketAddress::resolve("127.0.0.1", 0);
  ASSERT_EQ(::bind(held.get(), any.sockaddrPtr(), any.length()), 0);
  auto addr = SocketAddress::ofSocket(held.get());
  auto t0 = Clock::now();
  try {
    connectTcp(addr, Deadline::after(Millis(300)));
    FAIL() << "connected to a closed port";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConnectFailed);
    EXPECT_NE(std::string(e.what()).find(addr.str()), std::string::npos) << e.what();
  }
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

// What connectTcp meets by chance when the kernel picks the refused port as the source: forced
// here by binding the source to the destination port.
TEST(Socket, AConnectThatMetItselfCountsAsRefused) {
  for (const char* host : {"127.0.0.1", "::1"}) {
    auto any = SocketAddress::resolve(host, 0);
    Fd self(::socket(any.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(self.get(), any.sockaddrPtr(), any.length()), 0);
    auto own = SocketAddress::ofSocket(self.get());
    EXPECT_EQ(connectAttempt(self.get(), own, Deadline::after(Millis(5000))), ECONNREFUSED) << host;
    EXPECT_TRUE(isSelfConnected(self.get())) << host << ": the simultaneous open did connect";
    EXPECT_TRUE(staysOnThisMachine(self.get()));

    Fd l = listenTcp(SocketAddress::resolve(host, 0));
    Fd c = connectTcp(SocketAddress::ofSocket(l.get()), Deadline::after(Millis(5000)));
    EXPECT_FALSE(isSelfConnected(c.get())) << host;
    EXPECT_TRUE(staysOnThisMachine(c.get())) << host;
  }
  Fd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_FALSE(isSelfConnected(unconnected.get())) << "no peer address: not an error, just not connected";
  EXPECT_FALSE(staysOnThisMachine(unconnected.get()));
}

TEST(Socket, SendRecvMoveBytesAndRecvTimesOut) {
  Fd l = listenTcp(SocketAddress::resolve("::1", 0));
  auto addr = SocketAddress::ofSocket(l.get());
  Fd c = connectTcp(addr, Deadline::after(Millis(5000)));
  setNonBlocking(l.get(), false);
  Fd s(::accept4(l.get(), nullptr, nullptr, SOCK_NONBLOCK));
  ASSERT_TRUE(s.valid());
  std::vector<char> out(3 << 20, 'x'), in(out.size());
  std::thread sender([&] { sendAll(c.get(), out.data(), out.size(), Deadline::after(Millis(10000)), "peer"); });
  recvAll(s.get(), in.data(), in.size(), Deadline::after(Millis(10000)), "peer");
  sender.join();
  EXPECT_EQ(in, out);
  char b;
  try {
    recvAll(s.get(), &b, 1, Deadline::after(Millis(100)), "peer 7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout);
    EXPECT_NE(std::string(e.what()).find("peer 7"), std::string::npos);
  }
  c.reset();
  try {
    recvAll(s.get(), &b, 1, Deadline::after(Millis(5000)), "peer 7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConnectionClosed);
  }
}

TEST(Socket, BufferBytesSetBothDirections) {
  Fd l = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
  Fd c = connectTcp(SocketAddress::ofSocket(l.get()), Deadline::after(Millis(5000)));
  setBufferBytes(c.get(), 65536);
  for (int opt : {SO_SNDBUF, SO_RCVBUF}) {
    int v = 0;
    socklen_t len = sizeof v;
    ASSERT_EQ(::getsockopt(c.get(), SOL_SOCKET, opt, &v, &len), 0);
    EXPECT_EQ(v, 2 * 65536) << (opt == SO_SNDBUF ? "SO_SNDBUF" : "SO_RCVBUF") << " (Linux doubles what it is given)";
  }
  try {
    setBufferBytes(-1, 65536);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SO_SNDBUF"), std::string::npos) << e.what();
  }
}

// A give-up check counting its calls: gives `reason` from the `after`-th call on.
GiveUpCheck giveUpAfter(int after, std::string reason, std::shared_ptr<int> calls = std::make_shared<int>(0)) {
  return [=]() -> std::optional<std::string> { return ++*calls >= after ? std::optional(reason) : std::nullopt; };
}

// A silent peer holds a receive until the deadline — unless the give-up check (asked every
// 200 ms while nothing comes) gives a reason first.
TEST(Socket, RecvAllStopsWaitingWhenGiveUpGivesAReason) {
  Fd l = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
  Fd c = connectTcp(SocketAddress::ofSocket(l.get()), Deadline::after(Millis(5000)));
  setNonBlocking(l.get(), false);
  Fd s(::accept4(l.get(), nullptr, nullptr, SOCK_NONBLOCK));
  ASSERT_TRUE(s.valid());
  auto calls = std::make_shared<int>(0);
  const auto start = std::chrono::steady_clock::now();
  char b;
  try {
    recvAll(s.get(), &b, 1, Deadline::after(Millis(120000)), "peer 3", giveUpAfter(3, "called off", calls));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAborted);
    EXPECT_NE(std::string(e.what()).find("peer 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("called off"), std::string::npos) << e.what();
  }
  EXPECT_EQ(*calls, 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60)) << "waited for the deadline";
}

// The acceptor waits up to 10 s for a connection's hello: a build called off meanwhile must not
// wait that out for a connection that never says anything.
TEST(SocketConnector, AGiveUpEndsTheWaitForASilentConnectionsHello) {
  Fd l = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
  const std::string me = SocketAddress::ofSocket(l.get()).str();
  Fd silent = connectTcp(SocketAddress::ofSocket(l.get()), Deadline::after(Millis(5000)));
  const auto start = std::chrono::steady_clock::now();
  try {
    transport::establishConnections({"connector", 0, 0, 2}, {me, "127.0.0.1:1"}, 1, l.get(),
                                    Deadline::after(Millis(120000)), giveUpAfter(3, "called off"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAborted);
    EXPECT_NE(std::string(e.what()).find("called off"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 1"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8)) << "waited for the silent hello";
}

}  // namespace
}  // namespace eccl
