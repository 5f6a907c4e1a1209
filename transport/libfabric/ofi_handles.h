// RAII for libfabric objects: every fid is closed exactly once, in reverse order of opening
// when held as members declared in opening order.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_errno.h>

#include <memory>
#include <string>

namespace eccl::transport::ofi {

template <class T>
struct FidCloser {
  void operator()(T* p) const {
    if (p) fi_close(&p->fid);
  }
};
template <class T>
using FidPtr = std::unique_ptr<T, FidCloser<T>>;

struct InfoDeleter {
  void operator()(fi_info* i) const { fi_freeinfo(i); }
};
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

// "fi_tsend: Resource temporarily unavailable (-11)".
inline std::string fiError(const char* call, long ret) {
  return std::string(call) + ": " + fi_strerror(static_cast<int>(ret < 0 ? -ret : ret)) + " (" + std::to_string(ret) + ")";
}

// The libfabric API version eccl is written against (Debian 12 ships 1.17).
inline constexpr uint32_t kApiVersion = FI_VERSION(1, 17);

}  // namespace eccl::transport::ofi
