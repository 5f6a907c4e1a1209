// Runs a function as N local rank processes (fork), the way a launcher like torchrun would,
// and reaps every one of them: children still running at the deadline are killed by pid.
// Used by eccl-demo, eccl-perf, the multi-process tests and the benchmarks.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace eccl {

struct RankExit {
  int rank = -1;
  pid_t pid = -1;
  int exitCode = -1;    // exit status, or -1 when killed by a signal
  int signal = 0;       // the signal that ended it, if any
  bool timedOut = false;  // killed by us at the deadline
  bool ok() const { return exitCode == 0 && !timedOut; }
  std::string describe() const;
};

struct LocalRanksOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  // Start ranks in a random order with random delays up to this long (0 = in order, at once).
  std::chrono::milliseconds maxStartDelay{0};
  unsigned seed = 1;
  // Before killing a rank at the deadline, print every thread's stack (print_stacks.h) to
  // stderr: a hang seen once in CI can then be read instead of guessed. Unset = read
  // $ECCL_STACKS_ON_TIMEOUT when a rank hangs.
  std::optional<bool> stacksOnTimeout;
};

// What printing the stacks of every hung rank of one runLocalRanks may take, at most.
inline constexpr std::chrono::milliseconds kStacksBudget{60'000};

// Forks `n` children; child r runs fn(r) and exits with its return value (1 when it throws,
// after printing the exception to stderr). Returns one RankExit per rank, in rank order.
// Call it while this process has no other threads: a lock another thread holds at fork time
// (the sanitizer allocator's, a logger's) stays locked forever in the child.
std::vector<RankExit> runLocalRanks(int n, const std::function<int(int rank)>& fn, LocalRanksOptions options = {});

// True when every rank exited 0; prints each failed one's describe() to stderr.
bool allRanksOk(const std::vector<RankExit>& exits);

// Forks one child running fn() and returns its pid; the caller reaps it with reapChild.
pid_t forkChild(const std::function<int()>& fn);
// Waits for `pid` until the timeout, then SIGKILLs and reaps it — after printing its stacks
// (for at most `stacksLimit`) if `stacksOnTimeout`, or when unset if $ECCL_STACKS_ON_TIMEOUT says
// so (read only then: a child killed first never reads it).
RankExit reapChild(pid_t pid, std::chrono::milliseconds timeout, std::optional<bool> stacksOnTimeout = std::nullopt,
                   std::chrono::milliseconds stacksLimit = kStacksBudget);

}  // namespace eccl
