#include "base/env.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "base/deadline.h"
#include "base/error.h"

namespace eccl {

std::optional<std::string> envString(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::chrono::milliseconds envSeconds(const char* name, std::chrono::milliseconds fallback) {
  auto s = envString(name);
  if (!s) return fallback;
  char* end = nullptr;
  errno = 0;
  double secs = std::strtod(s->c_str(), &end);
  if (errno != 0 || end == s->c_str() || *end != '\0' || !std::isfinite(secs) || secs < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(name) + "='" + *s + "' is not a non-negative number of seconds");
  }
  // Beyond any deadline anyway (Deadline::after saturates there); keeps the conversion in range.
  const double ms = std::min(secs * 1000.0, static_cast<double>(Deadline::kNeverAfter.count()));
  return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

long long envInt(const char* name, long long fallback) {
  auto s = envString(name);
  if (!s) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s->c_str(), &end, 10);
  if (errno != 0 || end == s->c_str() || *end != '\0' || v < 0) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string(name) + "='" + *s + "' is not a non-negative integer");
  }
  return v;
}

std::chrono::milliseconds operationTimeout(std::optional<std::chrono::milliseconds> given) {
  return given ? *given : envSeconds("ECCL_TIMEOUT", std::chrono::seconds(300));
}

}  // namespace eccl
