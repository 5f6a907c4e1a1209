// Point to point and batch_isend_irecv: random patterns (many ops to one peer, self-sends,
// every rank posting all its sends before any receive, mixed sizes), byte-exact; the metadata
// helpers; abort and timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <random>

#include "tests/comm/local_comms.h"
#include "base/error.h"
#include "transport/transport_factory.h"

namespace eccl {
namespace {

using testing::localComms;
using testing::onEveryRank;
using testing::pattern;

TEST(BatchP2P, RandomPatternsAreByteExact) {
  for (int n : {2, 4, 7}) {
    auto comms = localComms(n);
    for (int round = 0; round < 5; ++round) {
      // msgs[from][to] = sizes of the messages from -> to (same on every rank: same seed)
      std::mt19937 rng(round * 100 + n);
      std::vector<std::vector<std::vector<size_t>>> msgs(n, std::vector<std::vector<size_t>>(n));
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b) {
          int k = rng() % 4;
          for (int i = 0; i < k; ++i) msgs[a][b].push_back(rng() % 3 == 0 ? (rng() % (3 << 20)) : rng() % 5000);
        }
      const bool sendsFirst = round % 2 == 0;
      onEveryRank(n, [&](int r) {
        std::vector<std::vector<uint8_t>> out, in;
        std::vector<P2POp> ops;
        for (int b = 0; b < n; ++b)
          for (size_t i = 0; i < msgs[r][b].size(); ++i) {
            out.push_back(pattern(msgs[r][b][i], r * 1000 + b * 10 + i));
          }
        size_t k = 0;
        for (int b = 0; b < n; ++b)
          for (size_t i = 0; i < msgs[r][b].size(); ++i, ++k)
            ops.push_back({P2POp::kSend, out[k].data(), out[k].size(), b, 7});
        std::vector<P2POp> recvs;
        for (int a = 0; a < n; ++a)
          for (size_t i = 0; i < msgs[a][r].size(); ++i) in.emplace_back(msgs[a][r][i]);
        k = 0;
        for (int a = 0; a < n; ++a)
          for (size_t i = 0; i < msgs[a][r].size(); ++i, ++k) recvs.push_back({P2POp::kRecv, in[k].data(), in[k].size(), a, 7});
        if (sendsFirst) ops.insert(ops.end(), recvs.begin(), recvs.end());
        else ops.insert(ops.begin(), recvs.begin(), recvs.end());
        comms[r]->batchIsendIrecv(ops).wait();
        k = 0;
        for (int a = 0; a < n; ++a)
          for (size_t i = 0; i < msgs[a][r].size(); ++i, ++k)
            ASSERT_TRUE(in[k] == pattern(msgs[a][r][i], a * 1000 + r * 10 + i)) << "from " << a << " #" << i;
      });
    }
  }
}

TEST(P2P, ObjectHelpers) {
  const int n = 4;
  auto comms = localComms(n);
  onEveryRank(n, [&](int r) {
    std::vector<uint8_t> mine(r * 1000 + 1, uint8_t(r));
    auto all = comms[r]->allGatherObj(mine);
    for (int q = 0; q < n; ++q) ASSERT_EQ(all[q], std::vector<uint8_t>(q * 1000 + 1, uint8_t(q)));
    auto b = comms[r]->broadcastObj(r == 2 ? std::vector<uint8_t>{1, 2, 3} : std::vector<uint8_t>{}, 2);
    ASSERT_EQ(b, (std::vector<uint8_t>{1, 2, 3}));
    if (r == 0) comms[r]->sendObj(std::vector<uint8_t>(77, 5), 3);
    if (r == 3) {
      ASSERT_EQ(comms[r]->recvObj(0), std::vector<uint8_t>(77, 5));
    }
  });
}

TEST(P2P, BadArgumentsNameThePeer) {
  auto comms = localComms(2);
  uint8_t b[4];
  try {
    comms[0]->isend(b, 4, 5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("peer 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(comms[0]->broadcast(b, 4, -1), Error);
  EXPECT_THROW(comms[0]->irecv(nullptr, 4, 1), Error);
}

TEST(Failures, AbortFailsEveryRanksPendingCollective) {
  const int n = 3;
  auto comms = localComms(n);
  std::vector<Work> works(n);
  std::vector<std::vector<uint8_t>> bufs(n, std::vector<uint8_t>(4096 * n));
  for (int r = 1; r < n; ++r) works[r] = comms[r]->allGatherAsync(bufs[r].data() + r * 4096, bufs[r].data(), 4096);
  comms[0]->abort("shutting down");
  for (int r = 1; r < n; ++r) {
    try {
      works[r].wait(std::chrono::seconds(30));
      FAIL() << "rank " << r << " finished";
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("all_gather"), std::string::npos) << m;
      EXPECT_NE(m.find("rank 0"), std::string::npos) << m;
      EXPECT_NE(m.find("shutting down"), std::string::npos) << m;
    }
  }
  // Later operations fail at once.
  EXPECT_THROW(comms[1]->barrier(), Error);
  for (auto& c : comms) c->destroy();
  for (auto& c : comms) c->destroy();  // idempotent
}

// The voluntary context switches so far of this process's threads named `name` (eccl names its
// threads), and how many there are.
// This process's threads named `name` (eccl names its threads): task id -> voluntary context
// switches so far.
std::map<std::string, long> threadsNamed(const std::string& name) {
  std::map<std::string, long> out;
  for (auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    if (comm != name) continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) out[task.path().filename()] = std::stol(line.substr(24));
  }
  return out;
}

// The communicator workers started since `earlier` was taken (other tests' may still be about).
std::map<std::string, long> newWorkers(const std::map<std::string, long>& earlier) {
  auto now = threadsNamed("eccl-comm");
  for (auto& [tid, n] : earlier) now.erase(tid);
  return now;
}

// A blocking collective with nothing queued runs on its caller's thread, and the communicator's
// idle worker sleeps through it: waking it after every call (to find nothing to do) cost a
// context switch and a fight for the lock per collective (a 2-rank 1 MiB all_gather over sockets
// ran at 3.1 GB/s busbw with it, 3.7 without, medians of 7 interleaved runs).
TEST(WorkerThread, BlockingCollectivesLeaveTheIdleWorkerAsleep) {
  const auto earlier = threadsNamed("eccl-comm");
  auto comms = localComms(2);
  // A worker names itself once it runs.
  for (auto until = Clock::now() + std::chrono::seconds(30); newWorkers(earlier).size() < 2 && Clock::now() < until;)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto before = newWorkers(earlier);
  ASSERT_EQ(before.size(), 2u);
  constexpr int kCalls = 300;
  onEveryRank(2, [&](int r) {
    int64_t v = r;
    for (int i = 0; i < kCalls; ++i) {
      comms[r]->allReduce(&v, &v, 1, DataType::kInt64, ReduceOp::kMax);
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // a woken worker would get a core
    }
    EXPECT_EQ(v, 1);
  });
  long woken = 0;
  for (auto& [tid, n] : threadsNamed("eccl-comm"))
    if (before.count(tid)) woken += n - before.at(tid);
  // Woken per call, the two workers would switch about 2 x 300 times.
  EXPECT_LT(woken, kCalls / 10) << "the idle workers were woken " << woken << " times";
}

// What the worker does wait for: a collective queued while another runs on its caller's thread
// starts once that one ends (the caller's thread wakes the worker for it), with no other event
// to wake it. (Equal inputs, so the sums hold even if a slow machine queued them the other way.)
TEST(WorkerThread, ACollectiveQueuedBehindOneOnItsCallersThreadStillRuns) {
  auto comms = localComms(2, {.timeout = std::chrono::seconds(20)});
  std::atomic<bool> inlineStarted{false};
  int64_t a = 1, b = 1;
  std::thread blocking([&] {
    inlineStarted = true;
    try {
      comms[0]->allReduce(&a, &a, 1, DataType::kInt64, ReduceOp::kSum);  // runs here; rank 1 is late
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
    }
  });
  while (!inlineStarted) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Work queued = comms[0]->allReduceAsync(&b, &b, 1, DataType::kInt64, ReduceOp::kSum);  // behind it
  std::thread peer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    int64_t x = 2, y = 2;
    try {
      comms[1]->allReduce(&x, &x, 1, DataType::kInt64, ReduceOp::kSum);
      comms[1]->allReduce(&y, &y, 1, DataType::kInt64, ReduceOp::kSum);
    } catch (const Error& e) {
      ADD_FAILURE() << "rank 1: " << e.what();
    }
  });
  blocking.join();
  EXPECT_EQ(a, 3);
  EXPECT_NO_THROW(queued.wait(std::chrono::seconds(30)));
  EXPECT_EQ(b, 3);
  peer.join();
}

// Blocking collectives run on their caller's thread when the worker is idle. Destroying the
// communicator from another thread while one is blocked there (rank 1 never joins) must fail it
// and a collective queued behind it, wait for the caller's thread to let go of the transport
// (ASan would see a use after free), and hang nowhere.
TEST(Failures, DestroyWhileACollectiveRunsOnItsCallersThread) {
  for (int round = 0; round < 20; ++round) {
    auto comms = localComms(2);
    Communicator* c = comms[0].get();
    std::atomic<int> failed{0}, started{0};
    std::thread blocked([&] {
      uint8_t b[64] = {0};
      ++started;
      try {
        c->allReduce(b, b, 64, DataType::kUInt8, ReduceOp::kSum);
      } catch (const Error&) {
        ++failed;
      }
    });
    std::thread queued([&] {
      uint64_t v = 1;
      ++started;
      try {
        c->allReduceAsync(&v, &v, 1, DataType::kInt64, ReduceOp::kSum).wait(std::chrono::seconds(30));
      } catch (const Error&) {
        ++failed;
      }
    });
    while (started.load() < 2) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(round % 5));
    c->destroy();
    blocked.join();
    queued.join();
    EXPECT_EQ(failed.load(), 2) << "round " << round;
  }
}

TEST(Failures, TimeoutNamesTheOperationAndBreaksTheGroup) {
  auto comms = localComms(2, {.timeout = std::chrono::milliseconds(300)});
  uint8_t b[8] = {0};
  auto start = Clock::now();
  try {
    comms[0]->broadcast(b, 8, 1);  // rank 1 never joins
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("broadcast of 8 bytes from rank 1"), std::string::npos) << m;
    EXPECT_NE(m.find("timed out"), std::string::npos) << m;
  }
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  // The timeout was told to rank 1: its next operation fails instead of hanging.
  EXPECT_THROW(comms[1]->barrier(), Error);
}

}  // namespace
}  // namespace eccl

namespace eccl {
namespace {

TEST(BatchP2P, EmptyBatchCompletesAtOnce) {
  auto comms = testing::localComms(2);
  Work w = comms[0]->batchIsendIrecv({});
  EXPECT_TRUE(w.valid());
  EXPECT_TRUE(w.test());
  w.wait(std::chrono::milliseconds(1));
  EXPECT_NO_THROW(w.cancel());  // a P2P Work, finished: nothing to cancel (not "a collective")
  EXPECT_FALSE(w.error());
}

// Over sockets and shared memory a small send has left when isend returns (copied into a socket
// or a ring), so its Work is finished at once, needing no state: test() is true before any wait,
// a copy says the same, and cancelling it does nothing (the bytes still arrive, also to a receive
// posted later). The same as a finished Work with state: leaving the state out must change
// nothing a caller can see. (libfabric and verbs finish sends when their completion comes.)
TEST(P2P, ASmallSendIsFinishedWhenPostedAndStaysDelivered) {
  auto comms = testing::localComms(2);
  const std::string kind = transport::resolveTransportOptions({.host = "127.0.0.1"}).kind;  // ($ECCL_TRANSPORT)
  const bool leavesAtPosting = kind == "auto" || kind == "shm" || kind == "socket";
  for (int i = 0; i < 100; ++i) {
    uint64_t v = 1000 + i, got = 0;
    Work s = comms[0]->isend(&v, sizeof(v), 1, 3);
    Work copy = s;
    EXPECT_TRUE(copy.valid());
    if (leavesAtPosting) {
      EXPECT_TRUE(copy.test()) << "send " << i << " had not left when isend returned";
    }
    s.wait();
    EXPECT_TRUE(copy.test());
    EXPECT_NO_THROW(copy.cancel());
    EXPECT_FALSE(copy.error());
    v = 0;  // the caller owns its buffer again
    comms[1]->irecv(&got, sizeof(got), 0, 3).wait();
    EXPECT_EQ(got, 1000u + i);
  }
}

// A failed P2P Work reports the same error however it is asked (test() then error(), or wait()),
// and a single operation (its request alone) the same way a batch does: the request's code, the
// operation named first.
TEST(P2P, AFailedWorkReportsOneErrorWhicheverWayItIsAsked) {
  auto comms = testing::localComms(2);
  for (bool batch : {false, true}) {
    for (bool testFirst : {false, true}) {
      const P2PTag tag = 10 + (batch ? 2 : 0) + (testFirst ? 1 : 0);
      uint64_t small = 7, big[2] = {0, 0}, other = 0;
      Work r = batch ? comms[1]->batchIsendIrecv({{P2POp::kRecv, big, sizeof(big), 0, tag, nullptr},
                                                  {P2POp::kRecv, &other, sizeof(other), 0, tag + 100, nullptr}})
                     : comms[1]->irecv(big, sizeof(big), 0, tag);
      comms[0]->isend(&small, sizeof(small), 1, tag).wait();  // 8 bytes for a 16-byte receive
      if (batch) comms[0]->isend(&small, sizeof(small), 1, tag + 100).wait();
      if (testFirst) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!r.test() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        ASSERT_TRUE(r.test());
        auto e = r.error();
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->rfind(batch ? "batch_isend_irecv of 2 operations: " : "recv: ", 0), 0u) << *e;
        EXPECT_NE(e->find("size mismatch"), std::string::npos) << *e;
      }
      try {
        r.wait();
        FAIL() << "a receive of the wrong size must fail";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
        EXPECT_NE(std::string(e.what()).find("size mismatch"), std::string::npos) << e.what();
        if (testFirst) {
          EXPECT_EQ(std::string(e.what()), *r.error());
        }
      }
    }
  }
}

// Registration through the communicator (RAII), regions carried by P2P, and receiver-pull reads
// of a peer's exported region; handles outlive their communicator safely.
TEST(RegisteredMemory, RegionsTravelWithBuffersAndPeersReadExportedRegions) {
  const int n = 3;
  auto comms = testing::localComms(n);
  std::vector<std::vector<uint8_t>> mine(n);
  std::vector<RegisteredMemory> regs(n);
  testing::onEveryRank(n, [&](int r) {
    Communicator& c = *comms[r];
    mine[r] = testing::pattern(1 << 20, r + 1);
    regs[r] = c.registerMemory(mine[r].data(), mine[r].size());
    auto blobs = c.allGatherObj(regs[r].exported());
    // Pull 64 KiB at offset 1000·r from the next rank's region, into a buffer of our own.
    const int from = (r + 1) % n;
    std::vector<uint8_t> got(64 << 10);
    c.iread(from, blobs[from], 1000 * r, got.data(), got.size()).wait();
    EXPECT_TRUE(std::equal(got.begin(), got.end(), testing::pattern(1 << 20, from + 1).begin() + 1000 * r));
    // A send from inside the region, with the region, to the previous rank.
    const int to = (r + n - 1) % n;
    std::vector<uint8_t> in(4096);
    Work recv = c.irecv(in.data(), in.size(), from, 5);
    c.isend(mine[r].data() + 100, 4096, to, 5, &regs[r].region()).wait();
    recv.wait();
    EXPECT_TRUE(std::equal(in.begin(), in.end(), testing::pattern(1 << 20, from + 1).begin() + 100));
    c.barrier();  // every read of our region is done before anyone deregisters
  });
  // A region that does not hold the buffer is refused, naming both.
  std::vector<uint8_t> other(16);
  try {
    comms[0]->isend(other.data(), other.size(), 1, 9, &regs[0].region());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not contain the buffer"), std::string::npos) << e.what();
  }
  for (auto& c : comms) c->destroy();
  regs.clear();  // after destroy: nothing to deregister, nothing crashes
}

}  // namespace
}  // namespace eccl
