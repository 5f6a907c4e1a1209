#include "apps/eccl-perf/gloo_compare.h"

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <vector>

namespace eccl::perf {

struct GlooPeer::Impl {
  std::shared_ptr<gloo::rendezvous::Context> ctx;
  uint32_t tag = 1;
};

GlooPeer::GlooPeer(int rank, int size, const std::string& dir) : impl_(std::make_unique<Impl>()) {
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto dev = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore store(dir);
  impl_->ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
  impl_->ctx->connectFullMesh(store, dev);
}

GlooPeer::~GlooPeer() = default;

namespace {
template <class F>
double timeIt(F&& f, int iters, int warmup) {
  for (int i = 0; i < warmup; ++i) f();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
}
}  // namespace

double GlooPeer::allGatherUs(size_t totalBytes, int iters, int warmup) {
  auto& ctx = impl_->ctx;
  const size_t per = totalBytes / ctx->size;
  std::vector<uint8_t> in(per, 1), out(per * ctx->size);
  gloo::BarrierOptions b(ctx);
  gloo::barrier(b);
  return timeIt([&] {
    gloo::AllgatherOptions opts(ctx);
    opts.setInput(in.data(), in.size());
    opts.setOutput(out.data(), out.size());
    opts.setTag(impl_->tag++);
    gloo::allgather(opts);
  }, iters, warmup);
}

double GlooPeer::maxOverRanks(double value) {
  double out = 0;
  gloo::AllreduceOptions opts(impl_->ctx);
  opts.setInput(&value, 1);
  opts.setOutput(&out, 1);
  opts.setReduceFunction(static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::max<double>));
  opts.setTag(impl_->tag++);
  gloo::allreduce(opts);
  return out;
}

namespace {
// Times `step(send buffer, receive buffer, slot)` over Gloo unbound buffers of `bytes`, after a
// barrier, on a fresh slot.
template <typename Step>
double timeP2P(const std::shared_ptr<gloo::rendezvous::Context>& ctx, uint32_t& tag, size_t bytes, int iters, int warmup, Step step) {
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  auto sbuf = ctx->createUnboundBuffer(a.data(), a.size());
  auto rbuf = ctx->createUnboundBuffer(b.data(), b.size());
  gloo::BarrierOptions bo(ctx);
  gloo::barrier(bo);
  const uint64_t slot = tag++;
  return timeIt([&] { step(*sbuf, *rbuf, slot); }, iters, warmup);
}
}  // namespace

double GlooPeer::sendRecvUs(size_t bytes, int iters, int warmup) {
  auto& ctx = impl_->ctx;
  const int right = (ctx->rank + 1) % ctx->size, left = (ctx->rank + ctx->size - 1) % ctx->size;
  return timeP2P(ctx, impl_->tag, bytes, iters, warmup, [&](auto& s, auto& r, uint64_t slot) {
    r.recv(left, slot);
    s.send(right, slot);
    r.waitRecv();
    s.waitSend();
  });
}

double GlooPeer::pingPongUs(size_t bytes, int iters, int warmup) {
  auto& ctx = impl_->ctx;
  const int peer = ctx->rank ^ 1;
  const bool first = ctx->rank % 2 == 0;
  if (peer >= ctx->size) {  // the odd rank out only joins the barrier; it times nothing
    timeP2P(ctx, impl_->tag, bytes, 1, 0, [](auto&, auto&, uint64_t) {});
    return 0;
  }
  return timeP2P(ctx, impl_->tag, bytes, iters, warmup, [&](auto& s, auto& r, uint64_t slot) {
    r.recv(peer, slot);
    if (first) {
      s.send(peer, slot);
      s.waitSend();
      r.waitRecv();
    } else {
      r.waitRecv();
      s.send(peer, slot);
      s.waitSend();
    }
  }) / 2;
}

}  // namespace eccl::perf
