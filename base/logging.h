// eccl's logger: one spdlog logger named "eccl", level from ECCL_LOG_LEVEL
// (trace, debug, info, warn, error, off; NCCL_DEBUG-style VERSION/WARN/INFO/TRACE also accepted).
// Default level: warn. Thread-safe.
#pragma once

#include <spdlog/spdlog.h>

namespace eccl {

spdlog::logger& logger();

}  // namespace eccl
