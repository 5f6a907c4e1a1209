// Printing a live process's stacks, for a rank about to be killed because it hung: the one
// chance to see where it was stuck. Uses gdb (a test dependency, not a library one).
#pragma once

#include <sys/types.h>

#include <chrono>

namespace eccl {

// $ECCL_STACKS_ON_TIMEOUT: 1 = print a hung rank's stacks before killing it; 0 or unset = don't.
// Throws Error(kInvalidArgument) naming the variable on any other value.
bool stacksOnTimeoutFromEnv();

// Prints every thread's stack of `pid` to stderr with gdb, waiting at most `limit` for it (gdb
// is killed after that, and when this process dies). False, saying why on stderr, when gdb is
// missing, cannot attach (ptrace restrictions) or takes too long.
bool printStacks(pid_t pid, std::chrono::milliseconds limit);

}  // namespace eccl
