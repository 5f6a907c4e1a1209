#include "transport/progress_wakeup.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "base/error.h"

namespace eccl::transport {

ProgressWakeup::ProgressWakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!fd_) throwSystemError("progress thread eventfd", errno);
}

void ProgressWakeup::force() {
  uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(fd_.get(), &one, sizeof(one));
}

void ProgressWakeup::drain() {
  uint64_t v;
  [[maybe_unused]] auto r = ::read(fd_.get(), &v, sizeof(v));
}

}  // namespace eccl::transport
