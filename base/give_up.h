// A long wait's way out before its deadline: asked now and then while a group connects, it gives
// a reason to stop waiting (the group build was called off: a recovery abandoned the epoch, a
// rank refused it), or nullopt to go on. An empty one never gives up.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace eccl {

using GiveUpCheck = std::function<std::optional<std::string>()>;

}  // namespace eccl
