#include "apps/eccl-demo/rendezvous_demo.h"

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "apps/common/local_ranks.h"
#include "groups/store/prefix_store.h"
#include "groups/store/store_barrier.h"
#include "groups/store/tcp_store_client.h"
#include "groups/store/tcp_store_server.h"
#include "transport/socket/socket.h"

namespace eccl::demo {

namespace {

int rankMain(int rank, int size, Fd& storeListener, const SocketAddress& storeAddr, Millis timeout) {
  // Rank 0 serves the store on the socket the launcher bound before forking (no port race);
  // every other rank only needs the address.
  std::optional<TcpStoreServer> server;
  if (rank == 0) server.emplace(std::move(storeListener), TcpStoreServerOptions{});
  else storeListener.reset();

  // The address this rank publishes: a socket it listens on (a transport device, later).
  Fd own = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
  std::string mine = SocketAddress::ofSocket(own.get()).str();

  auto client = std::make_shared<TcpStoreClient>(storeAddr, TcpStoreClientOptions{.timeout = timeout});
  PrefixStore store(client, "demo/0");
  store.set("addr/" + std::to_string(rank), asBytes(mine));
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back("addr/" + std::to_string(r));
  auto addrs = store.multiGet(keys);
  std::string line = "rank " + std::to_string(rank) + " (pid " + std::to_string(::getpid()) + ") listens on " +
                     mine + "; peers:";
  for (int r = 0; r < size; ++r) line += " " + std::to_string(r) + "=" + toString(addrs[r]);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  storeBarrier(store, "done", size);
  // Rank 0 hosts the store, so it leaves last: its own barrier reply may come back before the
  // server has answered everyone else. The others check out; rank 0 waits for all of them.
  if (rank != 0) {
    store.set("left/" + std::to_string(rank), asBytes("1"));
  } else {
    std::vector<std::string> left;
    for (int r = 1; r < size; ++r) left.push_back("left/" + std::to_string(r));
    store.wait(left);
  }
  return 0;
}

}  // namespace

int runRendezvousDemo(const RendezvousOptions& o) {
  Fd listener = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
  SocketAddress storeAddr = SocketAddress::ofSocket(listener.get());
  std::printf("== rendezvous: %d ranks start in random order; rank 0 embeds the store at %s\n", o.ranks,
              storeAddr.str().c_str());
  auto t0 = Clock::now();
  auto exits = runLocalRanks(
      o.ranks, [&](int rank) { return rankMain(rank, o.ranks, listener, storeAddr, o.timeout); },
      {o.timeout + std::chrono::seconds(10), o.maxStartDelay, o.seed});
  auto ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  int failed = 0;
  for (auto& e : exits) {
    if (!e.ok()) {
      ++failed;
      std::printf("   FAILED: %s\n", e.describe().c_str());
    }
  }
  std::printf("== rendezvous %s: %d/%d ranks exchanged addresses and met at the barrier in %.1f ms\n",
              failed ? "FAILED" : "ok", o.ranks - failed, o.ranks, ms);
  return failed ? 1 : 0;
}

}  // namespace eccl::demo
