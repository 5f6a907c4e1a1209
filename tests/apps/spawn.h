// Starts a program with arguments (posix_spawn), output to a file, for tests of the binaries.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/common/local_ranks.h"
#include "base/error.h"

extern char** environ;

namespace eccl::testing {

inline pid_t spawnProgram(const std::vector<std::string>& argv, const std::string& outputFile) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, outputFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throwSystemError("posix_spawn " + argv[0], rc);
  return pid;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string scratchPath(const std::string& name) {
  return "/tmp/eccl-test-" + std::to_string(::getpid()) + "-" + name;
}

}  // namespace eccl::testing
