#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "groups/store/store_auth.h"
#include "groups/store/tcp_store_client.h"
#include "groups/store/tcp_store_server.h"
#include "tests/store/log_capture.h"
#include "apps/common/child_store_server.h"
#include "base/error.h"

namespace eccl {
namespace {

TcpStoreClientOptions withToken(std::optional<std::string> t) { return {.timeout = Millis(5000), .token = std::move(t)}; }

TEST(StoreAuth, MacDependsOnTokenAndNonce) {
  auto n1 = store::randomNonce(), n2 = store::randomNonce();
  EXPECT_NE(n1, n2);
  EXPECT_EQ(store::computeMac("secret", n1), store::computeMac("secret", n1));
  EXPECT_NE(store::computeMac("secret", n1), store::computeMac("secret", n2));
  EXPECT_NE(store::computeMac("secret", n1), store::computeMac("secreT", n1));
  auto mac = store::computeMac("k", n1);
  EXPECT_TRUE(store::macEquals(mac, mac));
  EXPECT_FALSE(store::macEquals(std::span<const uint8_t>(mac).first(31), mac));
}

TEST(StoreAuth, RightTokenWorksWrongOrMissingTokenIsRefusedAndLogged) {
  ::unsetenv("ECCL_STORE_TOKEN");
  ::unsetenv("ECCL_STORE_TOKEN_FILE");
  testing::LogCapture log;
  TcpStoreServer server(TcpStoreServerOptions{.port = 0, .token = "s3cret"});
  TcpStoreClient good(server.address(), withToken("s3cret"));
  good.set("k", asBytes("v"));

  TcpStoreClient wrong(server.address(), withToken("guess"));
  try {
    wrong.get("k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAuth) << e.what();
    EXPECT_NE(std::string(e.what()).find(server.address().str()), std::string::npos) << e.what();
  }
  TcpStoreClient none(server.address(), withToken(std::nullopt));
  try {
    none.get("k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAuth);
    EXPECT_NE(std::string(e.what()).find("ECCL_STORE_TOKEN"), std::string::npos) << e.what();
  }
  // Raw client that skips AUTH and sends a command: dropped, logged with its address.
  Fd raw = connectTcp(server.address(), Deadline::after(Millis(5000)));
  std::string rawAddr = SocketAddress::ofSocket(raw.get()).str();
  std::vector<uint8_t> frame;
  store::FrameWriter(frame, uint8_t(store::Command::kNumKeys)).finish();
  sendAll(raw.get(), frame.data(), frame.size(), Deadline::after(Millis(5000)), "store");
  EXPECT_TRUE(waitForClose(raw.get(), Millis(5000)));

  EXPECT_EQ(toString(good.get("k")), "v");  // still serving the good client
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (log.text().find(rawAddr) == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(Millis(10));
  std::string text = log.text();
  EXPECT_NE(text.find("authentication failed"), std::string::npos) << text;
  EXPECT_NE(text.find("before authenticating"), std::string::npos) << text;
  EXPECT_NE(text.find(rawAddr), std::string::npos) << text;
}

TEST(StoreAuth, TokenFromFileAndEnvironment) {
  char path[] = "/tmp/eccl-token-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "from-file\n";
  EXPECT_EQ(*store::resolveToken(std::nullopt, std::string(path)), "from-file");
  ::setenv("ECCL_STORE_TOKEN_FILE", path, 1);
  EXPECT_EQ(*store::resolveToken(std::nullopt), "from-file");
  ::setenv("ECCL_STORE_TOKEN", "from-env", 1);
  EXPECT_EQ(*store::resolveToken(std::nullopt), "from-env");
  EXPECT_EQ(*store::resolveToken(std::string("explicit")), "explicit");

  TcpStoreServer server(TcpStoreServerOptions{.port = 0, .token = std::string("from-env")});
  TcpStoreClient c(server.address());  // token taken from ECCL_STORE_TOKEN
  c.ping();
  ::unsetenv("ECCL_STORE_TOKEN");
  ::unsetenv("ECCL_STORE_TOKEN_FILE");
  std::ofstream(path) << "";
  EXPECT_THROW(store::resolveToken(std::nullopt, std::string(path)), Error);
  ::unlink(path);
  try {
    store::resolveToken(std::nullopt, std::string(path));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
}

}  // namespace
}  // namespace eccl
