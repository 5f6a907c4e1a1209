#include "bench/timed_ranks.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "apps/common/local_ranks.h"
#include "base/deadline.h"
#include "base/error.h"

namespace eccl::bench {

namespace {
struct Shared {
  std::atomic<int> ready;
  std::atomic<int64_t> finishNs[1024];
};
int64_t nowNs() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }
}  // namespace

double runTimedRanks(int n, const std::function<void(int, const std::function<void()>&)>& fn) {
  if (n > 1024) throw Error(ErrorCode::kInvalidArgument, "runTimedRanks supports at most 1024 ranks");
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) throwSystemError("mmap", errno);
  auto* shared = new (mem) Shared{};
  int go[2];
  if (::pipe(go) != 0) throwSystemError("pipe", errno);
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    pids.push_back(forkChild([&, r] {
      ::close(go[1]);
      fn(r, [&] {
        shared->ready.fetch_add(1);
        char c;
        [[maybe_unused]] auto got = ::read(go[0], &c, 1);  // EOF when the parent releases everyone
      });
      shared->finishNs[r].store(nowNs());
      return 0;
    }));
  }
  ::close(go[0]);
  auto wait = Deadline::after(std::chrono::seconds(60));
  while (shared->ready.load() < n && !wait.expired()) ::usleep(200);
  int64_t release = nowNs();
  ::close(go[1]);
  bool failed = false;
  for (pid_t p : pids) failed |= !reapChild(p, std::chrono::seconds(120)).ok();
  int64_t last = release;
  for (int r = 0; r < n; ++r) last = std::max(last, shared->finishNs[r].load());
  ::munmap(mem, sizeof(Shared));
  if (failed) throw std::runtime_error("a benchmark rank failed");
  return double(last - release) / 1e9;
}

}  // namespace eccl::bench
