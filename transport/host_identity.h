// Which ranks share a machine (and so can share memory): equal host ids exactly.
#pragma once

#include <string>

namespace eccl::transport {

// $ECCL_HOST_ID if set (tests simulate several hosts with it), else the host name and the
// kernel's boot id.
std::string localHostId();

}  // namespace eccl::transport
