#include "apps/eccl-perf/gloo_compare.h"

#include <gloo/allgather.h>
#include <gloo/barrier.h>
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

double GlooPeer::sendRecvUs(size_t bytes, int iters, int warmup) {
  auto& ctx = impl_->ctx;
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  auto sbuf = ctx->createUnboundBuffer(a.data(), a.size());
  auto rbuf = ctx->createUnboundBuffer(b.data(), b.size());
  const int right = (ctx->rank + 1) % ctx->size, left = (ctx->rank + ctx->size - 1) % ctx->size;
  gloo::BarrierOptions bo(ctx);
  gloo::barrier(bo);
  const uint64_t slot = impl_->tag++;
  return timeIt([&] {
    rbuf->recv(left, slot);
    sbuf->send(right, slot);
    rbuf->waitRecv();
    sbuf->waitSend();
  }, iters, warmup);
}

double GlooPeer::pingPongUs(size_t bytes, int iters, int warmup) {
  auto& ctx = impl_->ctx;
  std::vector<uint8_t> a(bytes, 1), b(bytes);
  auto sbuf = ctx->createUnboundBuffer(a.data(), a.size());
  auto rbuf = ctx->createUnboundBuffer(b.data(), b.size());
  const int peer = ctx->rank ^ 1;
  gloo::BarrierOptions bo(ctx);
  gloo::barrier(bo);
  const uint64_t slot = impl_->tag++;
  if (peer >= ctx->size) return 0;
  const bool first = ctx->rank % 2 == 0;
  return timeIt([&] {
    if (first) {
      rbuf->recv(peer, slot);
      sbuf->send(peer, slot);
      sbuf->waitSend();
      rbuf->waitRecv();
    } else {
      rbuf->recv(peer, slot);
      rbuf->waitRecv();
      sbuf->send(peer, slot);
      sbuf->waitSend();
    }
  }, iters, warmup) / 2;
}

}  // namespace eccl::perf
