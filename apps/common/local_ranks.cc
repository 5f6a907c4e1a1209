#include "apps/common/local_ranks.h"

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "base/env.h"
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

bool stacksOnTimeoutFromEnv() {
  const long long v = envInt("ECCL_STACKS_ON_TIMEOUT", 0);
  if (v > 1) throw Error(ErrorCode::kInvalidArgument, "ECCL_STACKS_ON_TIMEOUT must be 0 or 1, got " + std::to_string(v));
  return v == 1;
}

bool printStacks(pid_t pid, std::chrono::milliseconds limit) {
  const std::string target = std::to_string(pid);
  std::vector<std::string> args = {"gdb", "-nx", "-batch", "-p", target, "-ex", "thread apply all bt"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  posix_spawn_file_actions_adddup2(&io, STDERR_FILENO, STDOUT_FILENO);  // all of it on stderr
  std::fprintf(stderr, "== stacks of pid %d (gdb) ==\n", pid);
  std::fflush(nullptr);
  pid_t gdb = -1;
  const int rc = ::posix_spawnp(&gdb, "gdb", &io, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&io);
  if (rc != 0) {
    std::fprintf(stderr, "cannot print the stacks of pid %d: gdb: %s\n", pid, std::strerror(rc));
    return false;
  }
  RankExit r = reapChild(gdb, limit, false);
  if (!r.ok()) std::fprintf(stderr, "gdb on pid %d: %s\n", pid, r.describe().c_str());
  return r.ok();
}

RankExit reapChild(pid_t pid, std::chrono::milliseconds timeout, bool stacksOnTimeout) {
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
  if (stacksOnTimeout) printStacks(pid);
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
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  for (int r = 0; r < n; ++r) {
    auto left = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                           deadline - std::chrono::steady_clock::now()));
    out[r] = reapChild(pids[r], left, options.stacksOnTimeout);
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
