// Byte sizes as the tools take them on the command line: "8", "64K", "1M", "2G".
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace eccl {

// The size `text` names, or nullopt with `why` (to follow the option's name and value in an
// error) when it is not digits with an optional K, M or G, or when it is larger than `max`.
std::optional<size_t> parseSize(const std::string& text, size_t max, std::string& why);

}  // namespace eccl
