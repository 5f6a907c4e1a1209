#include "comm/registered_memory.h"

#include "base/error.h"
#include "base/logging.h"

namespace eccl {

RegisteredMemory& RegisteredMemory::operator=(RegisteredMemory&& o) noexcept {
  if (this != &o) {
    reset();
    host_ = std::move(o.host_);
    region_ = o.region_;
    o.region_ = {};
  }
  return *this;
}

transport::RegionBlob RegisteredMemory::exported() const {
  if (!host_ || region_.id == 0) throw Error(ErrorCode::kInvalidArgument, "exporting memory that is not registered");
  std::lock_guard lock(host_->mu);
  if (!host_->transport)
    throw Error(ErrorCode::kAborted, "exporting a registration of a destroyed communicator");
  return host_->transport->exportRegion(region_);
}

void RegisteredMemory::reset() noexcept {
  if (!host_) return;
  {
    std::lock_guard lock(host_->mu);
    if (host_->transport && region_.id != 0) {
      try {
        host_->transport->deregisterMemory(region_);
      } catch (const std::exception& e) {
        logger().warn("deregistering {} bytes failed: {}", region_.bytes, e.what());
      }
    }
  }
  host_.reset();
  region_ = {};
}

}  // namespace eccl
