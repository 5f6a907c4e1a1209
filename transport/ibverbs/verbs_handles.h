// RAII for libibverbs objects: each is released exactly once, in reverse order of creation when
// held as members declared in creation order.
#pragma once

#include <infiniband/verbs.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace eccl::transport::verbs {

struct VerbsDeleter {
  void operator()(ibv_context* p) const { ibv_close_device(p); }
  void operator()(ibv_pd* p) const { ibv_dealloc_pd(p); }
  void operator()(ibv_comp_channel* p) const { ibv_destroy_comp_channel(p); }
  void operator()(ibv_cq* p) const { ibv_destroy_cq(p); }
  void operator()(ibv_srq* p) const { ibv_destroy_srq(p); }
  void operator()(ibv_qp* p) const { ibv_destroy_qp(p); }
  void operator()(ibv_mr* p) const { ibv_dereg_mr(p); }
};
template <class T>
using VerbsPtr = std::unique_ptr<T, VerbsDeleter>;
using MrPtr = std::shared_ptr<ibv_mr>;  // shared: operations in flight keep a registration alive

inline MrPtr shareMr(ibv_mr* mr) { return MrPtr(mr, VerbsDeleter{}); }

// "ibv_post_send: Cannot allocate memory (12)". Verbs calls return an errno value or set errno.
inline std::string verbsError(const char* call, int err) {
  return std::string(call) + ": " + std::strerror(err) + " (" + std::to_string(err) + ")";
}

}  // namespace eccl::transport::verbs
