// One rank of the multi-host test (tests/netns/netns_test.py runs one per "host" namespace):
// joins a group through the store, then alternates an all_gather and an expert-move-shaped batch
// P2P ring, checking every byte. Prints "built", "iter K" and finally "ok"; on an error prints
// "error: ..." and exits 3; on a wrong byte prints "CORRUPT ..." and exits 4.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/error.h"
#include "groups/group/stateless_group.h"

using namespace eccl;

namespace {

uint8_t pattern(int rank, int iter, size_t i) { return static_cast<uint8_t>(rank * 31 + iter * 7 + i * 13); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s STORE RANK SIZE ITERS BYTES TIMEOUT_S\n", argv[0]);
    return 2;
  }
  const std::string store = argv[1];
  const int rank = std::atoi(argv[2]), size = std::atoi(argv[3]), iters = std::atoi(argv[4]);
  const size_t bytes = std::strtoull(argv[5], nullptr, 10);
  const auto timeout = std::chrono::milliseconds(static_cast<long long>(std::atof(argv[6]) * 1000));
  try {
    auto g = StatelessGroup::create(store, "netns", rank, size, {.comm = {.timeout = timeout}});
    Communicator& c = g->comm();
    std::printf("built\n");
    std::fflush(stdout);
    std::vector<uint8_t> mine(bytes), all(bytes * size), in(bytes);
    for (int it = 0; it < iters; ++it) {
      for (size_t i = 0; i < bytes; ++i) mine[i] = pattern(rank, it, i);
      c.allGather(mine.data(), all.data(), bytes);
      for (int r = 0; r < size; ++r)
        for (size_t i = 0; i < bytes; i += 997)
          if (all[r * bytes + i] != pattern(r, it, i)) {
            std::printf("CORRUPT all_gather iter %d block %d byte %zu\n", it, r, i);
            return 4;
          }
      const int to = (rank + 1) % size, from = (rank + size - 1) % size;
      c.batchIsendIrecv({{P2POp::kSend, mine.data(), bytes, to}, {P2POp::kRecv, in.data(), bytes, from}}).wait();
      for (size_t i = 0; i < bytes; ++i)
        if (in[i] != pattern(from, it, i)) {
          std::printf("CORRUPT move iter %d byte %zu\n", it, i);
          return 4;
        }
      std::printf("iter %d\n", it);
      std::fflush(stdout);
    }
    c.barrier();
    std::printf("ok\n");
    return 0;
  } catch (const Error& e) {
    std::printf("error: %s\n", e.what());
    return 3;
  }
}
