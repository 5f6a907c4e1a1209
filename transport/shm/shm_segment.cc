#include "transport/shm/shm_segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace eccl::transport::shm {

SharedSegment& SharedSegment::operator=(SharedSegment&& o) noexcept {
  if (this != &o) {
    unmap();
    fd_ = std::move(o.fd_);
    data_ = o.data_;
    bytes_ = o.bytes_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void SharedSegment::unmap() {
  if (data_) ::munmap(data_, bytes_);
  data_ = nullptr;
  bytes_ = 0;
  fd_.reset();
}

SharedSegment SharedSegment::create(size_t bytes, const std::string& what) {
  SharedSegment s;
  s.fd_ = Fd(::memfd_create("eccl-shm", MFD_CLOEXEC));
  if (!s.fd_) throwSystemError(what + ": memfd_create", errno);
  if (::ftruncate(s.fd_.get(), static_cast<off_t>(bytes)) != 0)
    throwSystemError(what + ": sizing a " + std::to_string(bytes) + "-byte shared segment", errno);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd_.get(), 0);
  if (p == MAP_FAILED) throwSystemError(what + ": mapping a " + std::to_string(bytes) + "-byte shared segment", errno);
  s.data_ = static_cast<uint8_t*>(p);
  s.bytes_ = bytes;
  return s;
}

SharedSegment SharedSegment::open(pid_t pid, int fd, size_t bytes, const std::string& whose) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  SharedSegment s;
  s.fd_ = Fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!s.fd_) {
    const int e = errno;
    throw Error(e == ENOENT ? ErrorCode::kConnectFailed : ErrorCode::kSystem,
                "opening the shared memory of " + whose + " (" + path + ") failed: " + std::strerror(e) +
                    (e == ENOENT ? " (is it in another pid namespace, or gone?)"
                                 : e == EACCES || e == EPERM ? " (another user, or ptrace restrictions such as kernel.yama.ptrace_scope)" : ""));
  }
  struct stat st {};
  if (::fstat(s.fd_.get(), &st) != 0 || static_cast<size_t>(st.st_size) < bytes)
    throw Error(ErrorCode::kProtocol, "the shared memory of " + whose + " (" + path + ") is smaller than its address says");
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd_.get(), 0);
  if (p == MAP_FAILED) throwSystemError("mapping the shared memory of " + whose, errno);
  s.data_ = static_cast<uint8_t*>(p);
  s.bytes_ = bytes;
  s.fd_.reset();  // the mapping keeps the memory
  return s;
}

}  // namespace eccl::transport::shm
