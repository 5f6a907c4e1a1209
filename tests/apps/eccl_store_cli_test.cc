// The eccl-store binary: binds what it is told, reports its port, enforces its token file, and
// shuts down cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "groups/store/tcp_store_client.h"
#include "tests/apps/spawn.h"
#include "transport/socket/socket.h"

namespace eccl {
namespace {

using testing::readFile;
using testing::scratchPath;

uint16_t waitForPortFile(const std::string& path) {
  for (int i = 0; i < 2000; ++i) {
    std::string text = readFile(path);
    if (!text.empty()) return static_cast<uint16_t>(std::stoi(text));
    std::this_thread::sleep_for(Millis(10));
  }
  throw Error(ErrorCode::kTimeout, "eccl-store never wrote " + path);
}

TEST(EcclStoreCli, ServesOnIpv6WithATokenAndStopsOnSigterm) {
  std::string portFile = scratchPath("port"), tokenFile = scratchPath("token"), log = scratchPath("log");
  std::ofstream(tokenFile) << "cli-secret\n";
  ::unlink(portFile.c_str());
  pid_t pid = testing::spawnProgram(
      {ECCL_STORE_BIN, "--host", "::1", "--port", "0", "--token-file", tokenFile, "--port-file", portFile}, log);
  uint16_t port = waitForPortFile(portFile);
  auto addr = SocketAddress::resolve("::1", port);
  TcpStoreClient good(addr, {.timeout = Millis(10000), .token = "cli-secret"});
  good.set("k", asBytes("v"));
  EXPECT_EQ(toString(good.get("k")), "v");
  TcpStoreClient bad(addr, {.timeout = Millis(10000), .token = "nope"});
  EXPECT_THROW(bad.ping(), Error);
  ::kill(pid, SIGTERM);
  RankExit e = reapChild(pid, std::chrono::seconds(30));
  EXPECT_EQ(e.exitCode, 0) << e.describe() << "\n" << readFile(log);
  std::string out = readFile(log);
  EXPECT_NE(out.find("listening on [::1]:" + std::to_string(port) + " (token required)"), std::string::npos) << out;
  EXPECT_NE(out.find("authentication failed"), std::string::npos) << out;
  ::unlink(portFile.c_str());
  ::unlink(tokenFile.c_str());
  ::unlink(log.c_str());
}

TEST(EcclStoreCli, BadArgumentsExitNonZeroWithAMessage) {
  std::string log = scratchPath("badlog");
  struct Case {
    std::vector<std::string> args;
    const char* expect;
  };
  for (const Case& c : {Case{{"--token-file", "/nonexistent/token"}, "token"},
                        Case{{"--host", "no-such-host.invalid"}, "no-such-host.invalid"},
                        Case{{"--port", "70000"}, "port"},
                        Case{{"--max-value-bytes", "18446744073709551615"}, "--max-value-bytes"},
                        Case{{"--max-key-bytes", "0"}, "--max-key-bytes"},
                        Case{{"--port", "0", "--port-file", "/nonexistent-dir/port"}, "--port-file"}}) {
    std::vector<std::string> argv{ECCL_STORE_BIN};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    RankExit e = reapChild(testing::spawnProgram(argv, log), std::chrono::seconds(30));
    EXPECT_NE(e.exitCode, 0) << c.args[0];
    EXPECT_NE(readFile(log).find(c.expect), std::string::npos) << readFile(log);
  }
  ::unlink(log.c_str());
}

// With 64 descriptors and 100 clients it refuses some, serves again once they leave, keeps its
// log short, and still stops on SIGTERM.
TEST(EcclStoreCli, OutOfDescriptorsItKeepsServingAndStopsOnSigterm) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "at 64 descriptors the sanitizer runtime itself runs out (a UBSan report in fmt, then exit)";
#endif
  if (::access("/usr/bin/prlimit", X_OK) != 0) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  std::string portFile = scratchPath("fdport"), log = scratchPath("fdlog");
  ::unlink(portFile.c_str());
  pid_t pid = testing::spawnProgram(
      {"/usr/bin/prlimit", "--nofile=64:64", ECCL_STORE_BIN, "--port", "0", "--port-file", portFile}, log);
  auto addr = SocketAddress::resolve("127.0.0.1", waitForPortFile(portFile));
  {
    std::vector<Fd> many;
    for (int i = 0; i < 100; ++i) many.push_back(connectTcp(addr, Deadline::after(Millis(10000))));
    std::this_thread::sleep_for(Millis(300));
  }
  TcpStoreClient good(addr, {.timeout = Millis(10000)});
  Deadline d = Deadline::after(Millis(10000));
  for (;;) {
    try {
      good.set("k", asBytes("v"));
      break;
    } catch (const Error& e) {
      ASSERT_FALSE(d.expired()) << e.what();
      std::this_thread::sleep_for(Millis(50));
    }
  }
  ::kill(pid, SIGTERM);
  RankExit e = reapChild(pid, std::chrono::seconds(30));
  EXPECT_EQ(e.exitCode, 0) << e.describe();
  std::string out = readFile(log);
  EXPECT_NE(out.find("out of file descriptors"), std::string::npos) << out.substr(0, 2000);
  EXPECT_LT(out.size(), 4000u) << "the refusal log is not rate-limited:\n" << out.substr(0, 2000);
  ::unlink(portFile.c_str());
  ::unlink(log.c_str());
}

}  // namespace
}  // namespace eccl
