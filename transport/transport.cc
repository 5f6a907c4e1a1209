#include "transport/transport.h"

#include <cstring>

#include "transport/argument_checks.h"

namespace eccl::transport {

// Transports that do not copy the message themselves (sockets, RDMA) send it and copy it here.
RequestPtr Transport::isendAndCopy(int peer, Tag tag, const void* data, size_t bytes, void* copyTo, const MemoryRegion* region) {
  checkCopyTarget(identity(), peer, data, bytes, copyTo);
  RequestPtr r = isend(peer, tag, data, bytes, region);
  if (bytes) std::memcpy(copyTo, data, bytes);
  return r;
}

}  // namespace eccl::transport
