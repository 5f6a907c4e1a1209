// Reading eccl's ECCL_* environment variables. Bad values are errors naming the variable,
// never silently ignored.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace eccl {

// The variable's value, or nullopt when unset or empty.
std::optional<std::string> envString(const char* name);

// A duration given in seconds (fractions allowed, e.g. "0.5"); `fallback` when unset.
// Throws Error(kInvalidArgument) naming the variable on a malformed or negative value.
std::chrono::milliseconds envSeconds(const char* name, std::chrono::milliseconds fallback);

// A non-negative integer; `fallback` when unset. Throws like envSeconds.
long long envInt(const char* name, long long fallback);

// The deadline of group building and of every communicator operation: `given` if set, else
// $ECCL_TIMEOUT seconds, else 300 s. The one place that default is decided.
std::chrono::milliseconds operationTimeout(std::optional<std::chrono::milliseconds> given);

}  // namespace eccl
