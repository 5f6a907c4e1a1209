// Every store command against an in-process server, over IPv4 and IPv6.
#include <gtest/gtest.h>

#include <limits>
#include <stdlib.h>

#include <thread>

#include "groups/store/prefix_store.h"
#include "groups/store/store_barrier.h"
#include "groups/store/tcp_store_client.h"
#include "groups/store/tcp_store_server.h"
#include "base/error.h"

namespace eccl {
namespace {

class StoreCommands : public ::testing::TestWithParam<const char*> {
 protected:
  StoreCommands() : server_(TcpStoreServerOptions{.host = GetParam()}) {}
  std::shared_ptr<TcpStoreClient> client(Millis timeout = Millis(30000)) {
    return std::make_shared<TcpStoreClient>(server_.address(), TcpStoreClientOptions{.timeout = timeout});
  }
  TcpStoreServer server_;
};

INSTANTIATE_TEST_SUITE_P(Families, StoreCommands, ::testing::Values("127.0.0.1", "::1"),
                         [](const auto& info) { return std::string(info.param) == "::1" ? "Ipv6" : "Ipv4"; });

TEST_P(StoreCommands, BindsExactlyTheGivenAddress) {
  EXPECT_EQ(server_.address().host(), GetParam());
  EXPECT_NE(server_.address().port(), 0);
}

TEST_P(StoreCommands, SetGetTryGetCheckDelete) {
  auto c = client();
  c->set("a", asBytes("hello"));
  EXPECT_EQ(toString(c->get("a")), "hello");
  c->set("a", asBytes(""));
  EXPECT_TRUE(c->get("a").empty());
  EXPECT_EQ(c->tryGet("missing"), std::nullopt);
  EXPECT_EQ(toString(*c->tryGet("a")), "");
  EXPECT_TRUE(c->check({"a"}));
  EXPECT_FALSE(c->check({"a", "missing"}));
  EXPECT_TRUE(c->deleteKey("a"));
  EXPECT_FALSE(c->deleteKey("a"));
  EXPECT_FALSE(c->check({"a"}));
}

TEST_P(StoreCommands, BinaryValuesSurviveExactly) {
  auto c = client();
  Bytes v(70000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 131 + 7);
  c->set("bin", v);
  EXPECT_EQ(c->get("bin"), v);
}

TEST_P(StoreCommands, AddIsACounterStoredAsText) {
  auto c = client();
  EXPECT_EQ(c->add("n", 5), 5);
  EXPECT_EQ(c->add("n", -7), -2);
  EXPECT_EQ(toString(c->get("n")), "-2");
  c->set("text", asBytes("abc"));
  try {
    c->add("text", 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kRemote);
    EXPECT_NE(std::string(e.what()).find("'text'"), std::string::npos) << e.what();
  }
  c->ping();  // the connection is still usable after an error reply
}

TEST_P(StoreCommands, AddPastTheCounterRangeIsRefusedAndLeavesTheValue) {
  auto c = client();
  const int64_t top = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(c->add("big", top), top);
  for (int64_t delta : {int64_t(1), top}) {
    try {
      c->add("big", delta);
      FAIL() << "ADD of " << delta << " wrapped silently";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kRemote);
      EXPECT_NE(std::string(e.what()).find("overflow"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("'big'"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(toString(c->get("big")), std::to_string(top));
  EXPECT_EQ(c->add("low", std::numeric_limits<int64_t>::min()), std::numeric_limits<int64_t>::min());
  EXPECT_THROW(c->add("low", -1), Error);
}

TEST_P(StoreCommands, CompareSetSemantics) {
  auto c = client();
  auto r = c->compareSet("k", asBytes("x"), asBytes("y"));
  EXPECT_FALSE(r.swapped);
  EXPECT_TRUE(r.current.empty());
  EXPECT_FALSE(c->check({"k"}));
  r = c->compareSet("k", asBytes(""), asBytes("first"));
  EXPECT_TRUE(r.swapped);
  EXPECT_EQ(toString(r.current), "first");
  r = c->compareSet("k", asBytes("wrong"), asBytes("second"));
  EXPECT_FALSE(r.swapped);
  EXPECT_EQ(toString(r.current), "first");
  r = c->compareSet("k", asBytes("first"), asBytes("second"));
  EXPECT_TRUE(r.swapped);
  EXPECT_EQ(toString(c->get("k")), "second");
}

TEST_P(StoreCommands, MultiSetMultiGetAppendNumKeys) {
  auto c = client();
  c->multiSet({"m1", "m2", "m3"}, {Bytes{1}, Bytes{2, 2}, Bytes{}});
  auto v = c->multiGet({"m3", "m1", "m2"});
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], Bytes{});
  EXPECT_EQ(v[1], Bytes{1});
  EXPECT_EQ(v[2], (Bytes{2, 2}));
  c->append("log", asBytes("ab"));
  c->append("log", asBytes("cd"));
  EXPECT_EQ(toString(c->get("log")), "abcd");
  EXPECT_EQ(c->numKeys(), 4);
  EXPECT_THROW(c->multiSet({"a"}, {}), Error);
}

TEST_P(StoreCommands, GetWaitsForAnotherClientsSet) {
  auto waiter = client();
  auto setter = client();
  std::thread t([&] {
    std::this_thread::sleep_for(Millis(100));
    setter->set("later", asBytes("v"));
  });
  EXPECT_EQ(toString(waiter->get("later")), "v");
  waiter->wait({"later"});
  t.join();
  std::thread t2([&] {
    std::this_thread::sleep_for(Millis(50));
    setter->multiSet({"x", "y"}, {Bytes{1}, Bytes{2}});
  });
  auto both = waiter->multiGet({"x", "y", "later"});
  EXPECT_EQ(both[1], Bytes{2});
  t2.join();
}

TEST_P(StoreCommands, WaitTimeoutNamesMissingKeysAndAddress) {
  auto c = client();
  c->set("present", asBytes("1"));
  auto t0 = Clock::now();
  try {
    c->wait({"present", "absent/key"}, Millis(200));
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kTimeout);
    EXPECT_NE(m.find("'absent/key'"), std::string::npos) << m;
    EXPECT_EQ(m.find("still missing: 'present'"), std::string::npos) << m;
    EXPECT_NE(m.find(server_.address().str()), std::string::npos) << m;
  }
  EXPECT_GE(Clock::now() - t0, Millis(190));
  EXPECT_THROW(c->get("absent/key", Millis(50)), Error);
  c->ping();  // a server-side timeout leaves the connection usable
}

TEST_P(StoreCommands, DefaultTimeoutComesFromTheEnvironment) {
  ::setenv("ECCL_STORE_TIMEOUT", "0.2", 1);
  TcpStoreClient c(server_.address());
  ::unsetenv("ECCL_STORE_TIMEOUT");
  EXPECT_EQ(c.defaultTimeout(), Millis(200));
  EXPECT_THROW(c.get("never"), Error);
  ::setenv("ECCL_STORE_TIMEOUT", "soon", 1);
  EXPECT_THROW(TcpStoreClient(server_.address()), Error);
  ::unsetenv("ECCL_STORE_TIMEOUT");
}

TEST_P(StoreCommands, LimitsAreEnforcedWithClearErrors) {
  auto c = client();
  std::string longKey(9000, 'k');
  try {
    c->set(longKey, asBytes("v"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("9000"), std::string::npos);
  }
  // A client with larger limits than the server is refused by the server, not silently trimmed.
  TcpStoreClientOptions big{.timeout = Millis(5000)};
  big.limits.maxKeyBytes = 1 << 20;
  TcpStoreClient loose(server_.address(), big);
  try {
    loose.set(longKey, asBytes("v"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kRemote);
    EXPECT_NE(std::string(e.what()).find("exceeds the limit of 8192"), std::string::npos) << e.what();
  }
  loose.ping();
}

TEST_P(StoreCommands, PrefixStoreNamespacesKeys) {
  auto base = client();
  PrefixStore g1(base, "group/1"), g2(base, "group/2");
  g1.set("addr/0", asBytes("a"));
  g2.set("addr/0", asBytes("b"));
  EXPECT_EQ(toString(g1.get("addr/0")), "a");
  EXPECT_EQ(toString(g2.get("addr/0")), "b");
  EXPECT_EQ(toString(base->get("group/1/addr/0")), "a");
  EXPECT_EQ(g1.add("c", 2), 2);
  EXPECT_TRUE(g1.check({"addr/0", "c"}));
  EXPECT_FALSE(g2.check({"c"}));
  PrefixStore nested(std::make_shared<PrefixStore>(base, "group"), "1");
  EXPECT_EQ(toString(nested.get("addr/0")), "a");
  try {
    g1.get("missing", Millis(50));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("group/1/missing"), std::string::npos) << e.what();
  }
}

TEST_P(StoreCommands, BarrierReleasesOnlyWhenAllArrive) {
  const int n = 6;
  std::atomic<int> released{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) {
    ts.emplace_back([&, i] {
      auto c = client();
      std::this_thread::sleep_for(Millis(i * 20));
      storeBarrier(*c, "b1", n);
      released++;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(released, n);
  auto c = client();
  try {
    storeBarrier(*c, "lonely", 2, Millis(100));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout);
    EXPECT_NE(std::string(e.what()).find("1 of 2"), std::string::npos) << e.what();
  }
}

TEST_P(StoreCommands, ManyThreadsShareOneClient) {
  auto c = client();
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 200; ++i) c->add("shared", 1);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(toString(c->get("shared")), "800");
}

}  // namespace
}  // namespace eccl
