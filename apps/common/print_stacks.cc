#include "apps/common/print_stacks.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "apps/common/local_ranks.h"
#include "base/env.h"
#include "base/error.h"

namespace eccl {

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
  std::fprintf(stderr, "== stacks of pid %d (gdb) ==\n", pid);
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t gdb = ::fork();
  if (gdb < 0) {
    std::fprintf(stderr, "cannot print the stacks of pid %d: fork: %s\n", pid, std::strerror(errno));
    return false;
  }
  if (gdb == 0) {  // only async-signal-safe calls from here to exec
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test killed by ctest takes its gdb along
    if (::getppid() != parent) ::_exit(127);
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // all of it on stderr, beside the test's own output
    ::execvp("gdb", argv.data());
    ::_exit(127);
  }
  RankExit r = reapChild(gdb, limit, false);
  if (r.exitCode == 127) std::fprintf(stderr, "cannot print the stacks of pid %d: gdb is not installed\n", pid);
  else if (!r.ok()) std::fprintf(stderr, "gdb on pid %d: %s\n", pid, r.describe().c_str());
  return r.ok();
}

}  // namespace eccl
