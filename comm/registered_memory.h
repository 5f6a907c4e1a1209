// Memory registered with a communicator's transport (NCCL's ncclCommRegister / mhandle): pass
// region() with buffers inside it to isend/irecv/P2POp/iread so the transport need not register
// them per operation, and exported() to peers that read it with Communicator::iread.
//
// RAII: the destructor deregisters. Safe to outlive the communicator (destroy() releases every
// registration itself; the handle then does nothing). Move-only; not thread-safe per object.
#pragma once

#include <memory>
#include <mutex>

#include "transport/transport.h"

namespace eccl {

// The communicator's side of its registrations: the transport while it lives.
struct RegistrationHost {
  std::mutex mu;
  transport::Transport* transport = nullptr;  // null once the communicator is destroyed
};

class RegisteredMemory {
 public:
  RegisteredMemory() = default;
  RegisteredMemory(std::shared_ptr<RegistrationHost> host, transport::MemoryRegion region)
      : host_(std::move(host)), region_(region) {}
  RegisteredMemory(RegisteredMemory&& o) noexcept : host_(std::move(o.host_)), region_(o.region_) { o.region_ = {}; }
  RegisteredMemory& operator=(RegisteredMemory&& o) noexcept;
  RegisteredMemory(const RegisteredMemory&) = delete;
  RegisteredMemory& operator=(const RegisteredMemory&) = delete;
  ~RegisteredMemory() { reset(); }

  // The registration (id 0 once reset or moved from).
  const transport::MemoryRegion& region() const { return region_; }
  // The blob peers pass to Communicator::iread. Throws Error if reset or the communicator is gone.
  transport::RegionBlob exported() const;
  // Deregisters now (a no-op when already done). Errors are logged, not thrown.
  void reset() noexcept;

 private:
  std::shared_ptr<RegistrationHost> host_;
  transport::MemoryRegion region_;
};

}  // namespace eccl
