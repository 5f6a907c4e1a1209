// eccl-perf: collective and P2P bandwidth/latency over local ranks, in the manner of nccl-tests.
//   eccl-perf -o all_gather -b 8 -e 64M -f 2 -n 20 -w 5 -r 4
// It launches the ranks itself (fork), connects them through a store embedded in rank 0, and
// prints per size: time (the slowest rank's mean), algbw and busbw in GB/s.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <tuple>

#include "apps/common/local_ranks.h"
#include "apps/common/size_text.h"
#include "apps/eccl-perf/perf_ops.h"
#ifdef ECCL_HAVE_GLOO
#include "apps/eccl-perf/gloo_compare.h"
#endif
#include "groups/group/stateless_group.h"
#include "groups/store/tcp_store_server.h"
#include "base/error.h"
#include "transport/socket/socket.h"

namespace {

using namespace eccl;

// Sizes go up to 4 GiB (a buffer of that size per rank, or the gathered one).
constexpr size_t kMaxSize = size_t(4) << 30;

struct Args {
  std::string op = "all_gather", begin = "8", end = "64M";
  size_t minBytes = 0, maxBytes = 0;  // begin and end, parsed
  double factor = 2;
  int iters = 20, warmup = 5, ranks = 2, nsocks = -1;
  bool registered = false;  // P2P ops register their buffers once (nccl-tests' -R)
  std::string transport, provider;  // empty: $ECCL_TRANSPORT / $ECCL_OFI_PROVIDER
  std::string compare;  // "gloo": the same op through Gloo, side by side
  std::string glooDir;
};

int rankMain(int rank, const Args& a, Fd& listener, const SocketAddress& storeAddr) {
  std::optional<TcpStoreServer> server;
  if (rank == 0) server.emplace(std::move(listener), TcpStoreServerOptions{});
  else listener.reset();
  GroupOptions go;
  go.transport.socket.nsocks = a.nsocks;
  go.transport.kind = a.transport;
  go.transport.ofi.provider = a.provider;
  go.comm.timeout = std::chrono::seconds(120);
  auto g = StatelessGroup::create(storeAddr.str(), "perf", rank, a.ranks, go);
  Communicator& c = g->comm();
  const perf::OpKind* op = perf::findOp(a.op);
#ifdef ECCL_HAVE_GLOO
  std::unique_ptr<perf::GlooPeer> gloo;
  if (!a.compare.empty()) gloo = std::make_unique<perf::GlooPeer>(rank, a.ranks, a.glooDir);
#endif
  if (rank == 0) {
    auto resolved = transport::resolveTransportOptions(go.transport);
    std::string how = resolved.kind + (resolved.kind == "ofi" ? " (" + resolved.ofi.provider + ")"
                                       : resolved.kind == "verbs" && !resolved.verbs.hca.empty() ? " (" + resolved.verbs.hca + ")"
                                                                                                 : "");
    std::printf("# eccl-perf: %s, %d ranks, %d iterations (%d warm-up), %s transport%s\n", a.op.c_str(), a.ranks, a.iters,
                a.warmup, how.c_str(), a.registered ? ", registered buffers" : "");
    std::printf("#%12s %12s %10s %10s", "size (B)", "time (us)", "algbw GB/s", "busbw GB/s");
    if (!a.compare.empty()) std::printf(" | %14s %10s %12s", "gloo time (us)", "gloo busbw", "eccl / gloo");
    std::printf("\n");
  }
  for (size_t bytes = a.minBytes; bytes <= a.maxBytes; bytes = std::max(bytes + 1, size_t(bytes * a.factor))) {
    perf::PreparedOp p = op->prepare(c, bytes, a.registered);
    for (int i = 0; i < a.warmup; ++i) p.run();
    c.barrier();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < a.iters; ++i) p.run();
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / a.iters * p.timeScale;
    double slowest = 0;
    c.allReduce(&us, &slowest, 1, DataType::kFloat64, ReduceOp::kMax);
    double glooSlowest = 0;
#ifdef ECCL_HAVE_GLOO
    if (gloo) {
      double g = a.op == "all_gather" ? gloo->allGatherUs(p.size, a.iters, a.warmup)
                 : a.op == "pingpong"   ? gloo->pingPongUs(p.size, a.iters, a.warmup)
                                        : gloo->sendRecvUs(p.size, a.iters, a.warmup);
      c.allReduce(&g, &glooSlowest, 1, DataType::kFloat64, ReduceOp::kMax);
    }
#endif
    if (rank == 0) {
      double algbw = p.size / slowest / 1e3, bus = op->busFactor(a.ranks);
      std::printf(" %12zu %12.2f %10.3f %10.3f", p.size, slowest, algbw, algbw * bus);
      if (glooSlowest > 0)
        std::printf(" | %14.2f %10.3f %11.2fx", glooSlowest, p.size / glooSlowest / 1e3 * bus, glooSlowest / slowest);
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  c.barrier();  // rank 0 hosts the store: everyone is done with it before it goes
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eccl-perf: measure eccl collectives and P2P on local ranks (nccl-tests style)"};
  Args a;
  std::string ops;
  for (auto& o : perf::allOps()) ops += (ops.empty() ? "" : ", ") + o.name;
  app.add_option("-o,--op", a.op, "operation: " + ops)->capture_default_str();
  app.add_option("-b,--minbytes", a.begin, "smallest size (K/M/G suffixes)")->capture_default_str();
  app.add_option("-e,--maxbytes", a.end, "largest size")->capture_default_str();
  app.add_option("-f,--stepfactor", a.factor, "size multiplier between steps")->check(CLI::Range(1.01, 1e6))->capture_default_str();
  app.add_option("-n,--iters", a.iters, "timed iterations per size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("-w,--warmup_iters", a.warmup, "untimed iterations per size")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("-r,--ranks", a.ranks, "local ranks to launch")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--transport", a.transport, "auto, socket, shm, ofi or verbs (default $ECCL_TRANSPORT or auto)")
      ->check(CLI::IsMember({"auto", "socket", "shm", "ofi", "verbs"}));
  app.add_option("--provider", a.provider, "with --transport ofi: auto, shm, tcp or a libfabric provider (default $ECCL_OFI_PROVIDER or auto)");
  app.add_flag("--register", a.registered,
               "point-to-point ops (pingpong, bandwidth, sendrecv, batch_p2p) register their buffers once and pass the regions, as "
               "an engine does with its expert memory (nccl-tests' -R); otherwise RDMA transports register per message");
  app.add_option("--nsocks", a.nsocks, "sockets per peer (default $ECCL_SOCKET_NSOCKS or 2)")->check(CLI::Range(1, 64));
  app.add_option("--compare", a.compare, "also run the op through this library and print both (gloo)")->check(CLI::IsMember({"gloo"}));
  CLI11_PARSE(app, argc, argv);
  std::string why;
  for (auto [text, out, name] : {std::tuple{&a.begin, &a.minBytes, "--minbytes"}, std::tuple{&a.end, &a.maxBytes, "--maxbytes"}}) {
    auto v = parseSize(*text, kMaxSize, why);
    if (!v) {
      std::fprintf(stderr, "eccl-perf: %s '%s' %s\n", name, text->c_str(), why.c_str());
      return 2;
    }
    *out = *v;
  }
  if (a.minBytes > a.maxBytes) {
    std::fprintf(stderr, "eccl-perf: --minbytes %s is larger than --maxbytes %s\n", a.begin.c_str(), a.end.c_str());
    return 2;
  }
  if (!std::isfinite(a.factor)) {
    std::fprintf(stderr, "eccl-perf: --stepfactor must be a number from 1.01 to 1e6\n");
    return 2;
  }
  if (!a.compare.empty()) {
#ifndef ECCL_HAVE_GLOO
    std::fprintf(stderr, "eccl-perf: built without Gloo; install libgloo-dev and reconfigure to use --compare gloo\n");
    return 2;
#else
    if (!perf::GlooPeer::supports(a.op)) {
      std::fprintf(stderr, "eccl-perf: --compare gloo supports all_gather, sendrecv and pingpong, not %s\n", a.op.c_str());
      return 2;
    }
    char dir[] = "/tmp/eccl-perf-gloo-XXXXXX";
    if (!::mkdtemp(dir)) {
      std::perror("eccl-perf: mkdtemp");
      return 1;
    }
    a.glooDir = dir;
#endif
  }
  if (!perf::findOp(a.op)) {
    std::fprintf(stderr, "eccl-perf: unknown op '%s' (expected one of: %s)\n", a.op.c_str(), ops.c_str());
    return 2;
  }
  try {
    Fd listener = listenTcp(SocketAddress::resolve("127.0.0.1", 0));
    SocketAddress storeAddr = SocketAddress::ofSocket(listener.get());
    auto exits = runLocalRanks(a.ranks, [&](int rank) { return rankMain(rank, a, listener, storeAddr); },
                               {std::chrono::minutes(30)});
    int failed = 0;
    for (auto& e : exits)
      if (!e.ok()) {
        std::fprintf(stderr, "eccl-perf: %s\n", e.describe().c_str());
        ++failed;
      }
    if (!a.glooDir.empty()) std::filesystem::remove_all(a.glooDir);
    return failed ? 1 : 0;
  } catch (const eccl::Error& e) {
    std::fprintf(stderr, "eccl-perf: %s\n", e.what());
    return 1;
  }
}
