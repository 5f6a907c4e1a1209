#include "apps/common/local_ranks.h"
#include "apps/common/print_stacks.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <numeric>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "base/error.h"

namespace eccl {

std::string RankExit::describe() const {
  std::string who = "rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ")";
  if (timedOut) return who + " did not finish before the deadline and was killed";
  if (signal != 0) return who + " was killed by signal " + std::to_string(signal);
  return who + " exited with code " + std::to_string(exitCode);
}

pid_t forkChild(const std::function<int()>& fn) {
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throwSystemError("fork", errno);
  if (pid > 0) return pid;
  // A child must not outlive its parent (a crashed test would leave it running forever).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  // Where Yama restricts ptrace, let the parent's helpers (gdb, printStacks) attach to us.
  ::prctl(PR_SET_PTRACER, parent);
  int code = 1;
  try {
    code = fn();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[pid %d] error: %s\n", ::getpid(), e.what());
  } catch (...) {
    std::fprintf(stderr, "[pid %d] unknown exception\n", ::getpid());
  }
  std::fflush(nullptr);
  ::_exit(code);  // never run the parent's atexit handlers or test framework in a child
}

namespace {

void fill(RankExit& r, int status) {
  if (WIFEXITED(status)) r.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
}

}  // namespace

RankExit reapChild(pid_t pid, std::chrono::milliseconds timeout, std::optional<bool> stacksOnTimeout,
                   std::chrono::milliseconds stacksLimit) {
  RankExit r;
  r.pid = pid;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) {
      fill(r, status);
      return r;
    }
    if (got < 0) throwSystemError("waitpid(" + std::to_string(pid) + ")", errno);
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (stacksOnTimeout.value_or(stacksOnTimeoutFromEnv())) printStacks(pid, stacksLimit);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  fill(r, status);
  r.timedOut = true;
  return r;
}

std::vector<RankExit> runLocalRanks(int n, const std::function<int(int rank)>& fn, LocalRanksOptions options) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(options.seed);
  if (options.maxStartDelay.count() > 0) std::shuffle(order.begin(), order.end(), rng);
  std::vector<pid_t> pids(n, -1);
  for (int rank : order) {
    if (options.maxStartDelay.count() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (options.maxStartDelay.count() + 1)));
    try {
      pids[rank] = forkChild([&fn, rank] { return fn(rank); });
    } catch (...) {
      for (pid_t p : pids)
        if (p > 0) reapChild(p, std::chrono::milliseconds(0), false);  // ours to end now, not a hang
      throw;
    }
  }
  std::vector<RankExit> out(n);
  using std::chrono::milliseconds;
  auto until = [](std::chrono::steady_clock::time_point t) {
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(t - std::chrono::steady_clock::now()));
  };
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  // The stack printing of all hung ranks shares one budget, so it cannot outlast a test's own limit.
  std::optional<std::chrono::steady_clock::time_point> stacksDeadline;
  for (int r = 0; r < n; ++r) {
    const auto left = until(deadline);
    if (left.count() == 0 && !stacksDeadline) stacksDeadline = std::chrono::steady_clock::now() + kStacksBudget;
    out[r] = reapChild(pids[r], left, options.stacksOnTimeout, stacksDeadline ? until(*stacksDeadline) : kStacksBudget);
    out[r].rank = r;
  }
  return out;
}

bool allRanksOk(const std::vector<RankExit>& exits) {
  bool ok = true;
  for (auto& e : exits)
    if (!e.ok()) {
      std::fprintf(stderr, "%s\n", e.describe().c_str());
      ok = false;
    }
  return ok;
}

}  // namespace eccl
