#include "apps/eccl-perf/perf_ops.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace eccl::perf {
namespace {

// Buffers live in the closure for as long as the prepared op does; registered ones (--register)
// with their registrations.
struct Buffers {
  std::vector<uint8_t> send, recv;
  RegisteredMemory sendReg, recvReg;
  void registerWith(Communicator& c, bool on) {
    if (!on) return;
    sendReg = c.registerMemory(send.data(), send.size());
    recvReg = c.registerMemory(recv.data(), recv.size());
  }
  const transport::MemoryRegion* sendRegion() const { return sendReg.region().id ? &sendReg.region() : nullptr; }
  const transport::MemoryRegion* recvRegion() const { return recvReg.region().id ? &recvReg.region() : nullptr; }
};

PreparedOp allGather(Communicator& c, size_t bytes, bool) {
  const size_t per = bytes / c.size();
  auto b = std::make_shared<Buffers>();
  b->send.assign(per, 1);
  b->recv.resize(per * c.size());
  return {[&c, b, per] { c.allGather(b->send.data(), b->recv.data(), per); }, per * c.size()};
}

PreparedOp allReduce(Communicator& c, size_t bytes, bool) {
  const size_t count = bytes / 4;
  auto b = std::make_shared<Buffers>();
  b->send.assign(count * 4, 0);
  b->recv.resize(count * 4);
  return {[&c, b, count] { c.allReduce(b->send.data(), b->recv.data(), count, DataType::kFloat32, ReduceOp::kSum); },
          count * 4};
}

PreparedOp sendRecv(Communicator& c, size_t bytes, bool registered) {
  auto b = std::make_shared<Buffers>();
  b->send.assign(std::max<size_t>(bytes, 1), 1);
  b->recv.resize(std::max<size_t>(bytes, 1));
  b->registerWith(c, registered);
  const int right = (c.rank() + 1) % c.size(), left = (c.rank() + c.size() - 1) % c.size();
  return {[&c, b, bytes, right, left] {
            c.batchIsendIrecv({{P2POp::kSend, b->send.data(), bytes, right, 0, b->sendRegion()},
                               {P2POp::kRecv, b->recv.data(), bytes, left, 0, b->recvRegion()}})
                .wait();
          },
          bytes};
}

// Latency: ranks 2k and 2k+1 bounce one message (an odd rank out idles); a run is a round trip.
PreparedOp pingPong(Communicator& c, size_t bytes, bool registered) {
  auto b = std::make_shared<Buffers>();
  b->send.assign(std::max<size_t>(bytes, 1), 1);
  b->recv.resize(std::max<size_t>(bytes, 1));
  b->registerWith(c, registered);
  const int peer = c.rank() ^ 1;
  if (peer >= c.size()) return {[] {}, bytes, 0.5};
  if (c.rank() % 2 == 0)
    return {[&c, b, bytes, peer] {
              Work r = c.irecv(b->recv.data(), bytes, peer, 0, b->recvRegion());
              c.isend(b->send.data(), bytes, peer, 0, b->sendRegion()).wait();
              r.wait();
            },
            bytes, 0.5};
  return {[&c, b, bytes, peer] {
            c.irecv(b->recv.data(), bytes, peer, 0, b->recvRegion()).wait();
            c.isend(b->recv.data(), bytes, peer, 0, b->recvRegion()).wait();
          },
          bytes, 0.5};
}

// Bandwidth, as OSU's osu_bw measures it: ranks 2k send a window of 64 messages to 2k+1 (all
// from one buffer, into one buffer), which answers with one byte once all have arrived; the
// time is per message, so algbw is the streaming rate one pair reaches.
PreparedOp bandwidth(Communicator& c, size_t bytes, bool registered) {
  constexpr int kWindow = 64;
  auto b = std::make_shared<Buffers>();
  b->send.assign(std::max<size_t>(bytes, 1), 1);
  b->recv.resize(std::max<size_t>(bytes, 1));
  b->registerWith(c, registered);
  const int peer = c.rank() ^ 1;
  if (peer >= c.size()) return {[] {}, bytes, 1.0 / kWindow};
  const bool sender = c.rank() % 2 == 0;
  return {[&c, b, bytes, peer, sender] {
            std::vector<Work> window;
            uint8_t ack = 0;
            for (int i = 0; i < kWindow; ++i)
              window.push_back(sender ? c.isend(b->send.data(), bytes, peer, 0, b->sendRegion())
                                      : c.irecv(b->recv.data(), bytes, peer, 0, b->recvRegion()));
            for (auto& w : window) w.wait();
            if (sender) c.recv(&ack, 1, peer, 1);
            else c.send(&ack, 1, peer, 1);
          },
          bytes, 1.0 / kWindow};
}

// The expert-move pattern: every rank sends 16 messages of `bytes` to peers chosen round-robin
// and receives 16; one batch_isend_irecv. The size column is the bytes one rank sends.
PreparedOp batchP2P(Communicator& c, size_t bytes, bool registered) {
  constexpr int kMessages = 16;
  auto b = std::make_shared<Buffers>();
  b->send.assign(std::max<size_t>(bytes * kMessages, 1), 1);
  b->recv.resize(std::max<size_t>(bytes * kMessages, 1));
  b->registerWith(c, registered);
  std::vector<P2POp> ops;
  for (int i = 0; i < kMessages; ++i) {
    int shift = 1 + i % std::max(1, c.size() - 1);
    ops.push_back({P2POp::kSend, b->send.data() + i * bytes, bytes, (c.rank() + shift) % c.size(), 0, b->sendRegion()});
    ops.push_back({P2POp::kRecv, b->recv.data() + i * bytes, bytes, (c.rank() + c.size() - shift) % c.size(), 0, b->recvRegion()});
  }
  return {[&c, b, ops] { c.batchIsendIrecv(ops).wait(); }, bytes * kMessages};
}

PreparedOp allToAll(Communicator& c, size_t bytes, bool) {
  const size_t per = bytes / c.size();
  auto b = std::make_shared<Buffers>();
  b->send.assign(per * c.size(), 1);
  b->recv.resize(per * c.size());
  std::vector<size_t> counts(c.size(), per), offsets(c.size());
  for (int r = 0; r < c.size(); ++r) offsets[r] = r * per;
  return {[&c, b, counts, offsets] { c.allToAllV(b->send.data(), counts, offsets, b->recv.data(), counts, offsets); },
          per * c.size()};
}

}  // namespace

double OpKind::busFactor(int n) const {
  if (name == "all_gather" || name == "all_to_all") return double(n - 1) / n;
  if (name == "all_reduce") return 2.0 * (n - 1) / n;
  return 1.0;
}

const std::vector<OpKind>& allOps() {
  static const std::vector<OpKind> ops = {{"all_gather", allGather}, {"all_reduce", allReduce}, {"sendrecv", sendRecv},
                                          {"pingpong", pingPong},     {"batch_p2p", batchP2P},   {"all_to_all", allToAll},
                                          {"bandwidth", bandwidth}};
  return ops;
}

const OpKind* findOp(const std::string& name) {
  for (auto& op : allOps())
    if (op.name == name) return &op;
  return nullptr;
}

}  // namespace eccl::perf
