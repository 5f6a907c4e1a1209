// A shared-memory segment: anonymous memory (memfd) made by its owner and mapped by peers on the
// same host through /proc/<owner pid>/fd/<fd>. Nothing is named in /dev/shm, so nothing leaks
// when a process crashes: the memory goes when the last mapping does. Opening another process's
// fd needs the same permission as reading its memory (ptrace read access), which cross-memory
// attach needs anyway.
//
// RAII: unmaps (and closes the fd) on destruction. Move-only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "transport/socket/fd.h"

namespace eccl::transport::shm {

class SharedSegment {
 public:
  SharedSegment() = default;
  // A new zero-filled segment of `bytes`. Throws Error(kSystem) naming `what` (e.g. the memory limit).
  static SharedSegment create(size_t bytes, const std::string& what);
  // Maps `bytes` of the segment that process `pid` holds as fd `fd`. Throws Error naming `whose`.
  static SharedSegment open(pid_t pid, int fd, size_t bytes, const std::string& whose);
  SharedSegment(SharedSegment&& o) noexcept { *this = std::move(o); }
  SharedSegment& operator=(SharedSegment&& o) noexcept;
  SharedSegment(const SharedSegment&) = delete;
  SharedSegment& operator=(const SharedSegment&) = delete;
  ~SharedSegment() { unmap(); }

  uint8_t* data() const { return data_; }
  size_t size() const { return bytes_; }
  int fd() const { return fd_.get(); }

 private:
  void unmap();
  Fd fd_;
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace eccl::transport::shm
