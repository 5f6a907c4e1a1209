#include "base/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "base/env.h"

namespace eccl {
namespace {

spdlog::level::level_enum levelFromEnv() {
  auto v = envString("ECCL_LOG_LEVEL");
  if (!v) return spdlog::level::warn;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "version") return spdlog::level::warn;  // NCCL_DEBUG=VERSION prints little more than warnings
  if (s == "warning") return spdlog::level::warn;
  auto lvl = spdlog::level::from_str(s);
  // from_str maps unknown names to off; an unknown name should not silence warnings.
  if (lvl == spdlog::level::off && s != "off") return spdlog::level::warn;
  return lvl;
}

std::shared_ptr<spdlog::logger> makeLogger() {
  auto log = spdlog::stderr_color_mt("eccl");
  log->set_level(levelFromEnv());
  log->set_pattern("[%H:%M:%S.%e] [eccl pid %P] [%l] %v");
  return log;
}

}  // namespace

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> log = makeLogger();
  return *log;
}

}  // namespace eccl
