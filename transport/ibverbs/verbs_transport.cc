// The verbs transport's lifecycle, posting and matching: device and queues, connecting queue
// pairs, isend (eager or rendezvous), what waits for room, and the plugin's entry point.
#include <fcntl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "base/logging.h"
#include "base/thread_name.h"
#include "transport/host_identity.h"
#include "transport/ibverbs/verbs_transport_impl.h"

namespace eccl::transport::verbs {
namespace {

constexpr uint64_t kControlReserve = 2;  // credits eager data leaves to control messages
constexpr uint32_t kMaxSendWr = 256;

size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

void checkRange(const char* what, long long v, long long lo, long long hi, const char* env) {
  if (v < lo || v > hi)
    throw Error(ErrorCode::kInvalidArgument, std::string("verbs transport: ") + what + " " + std::to_string(v) + " (" + env +
                                                 ") is outside " + std::to_string(lo) + ".." + std::to_string(hi));
}

}  // namespace

VerbsTransport::VerbsTransport(GroupIdentity id, VerbsOptions opts)
    : id_(std::move(id)), opts_(std::move(opts)), matcher_(std::max(id_.size, 1), opts_.unexpectedBudget) {
  if (id_.size <= 0 || id_.rank < 0 || id_.rank >= id_.size)
    throw Error(ErrorCode::kInvalidArgument, "bad group identity: rank " + std::to_string(id_.rank) + " of " + std::to_string(id_.size));
  if (opts_.host.empty()) throw Error(ErrorCode::kInvalidArgument, "verbs transport needs a host address for its side channel");
  if (opts_.eagerBytes == 0) opts_.eagerBytes = VerbsOptions::kDefaultEagerBytes;
  checkRange("ACK timeout exponent", opts_.ibTimeout, 1, 31, "ECCL_IB_TIMEOUT");
  checkRange("retry count", opts_.retryCount, 0, 7, "ECCL_IB_RETRY_CNT");
  checkRange("traffic class", opts_.trafficClass, 0, 255, "ECCL_IB_TC");
  checkRange("service level", opts_.serviceLevel, 0, 15, "ECCL_IB_SL");
  checkRange("eager limit", static_cast<long long>(opts_.eagerBytes), 1, 1 << 20, "VerbsOptions::eagerBytes");
  device_ = std::make_unique<VerbsDevice>(opts_.hca, opts_.gidIndex, opts_.host);
  createQueues();
  side_ = std::make_unique<SideChannel>(id_, opts_.host);
  self_.hostId = opts_.hostId.empty() ? localHostId() : opts_.hostId;
  self_.sideChannel = side_->address();
  std::memcpy(self_.gid, device_->gid().raw, 16);
  self_.lid = device_->lid();
  self_.mtu = static_cast<uint8_t>(device_->activeMtu());
  self_.roce = device_->roce();
  self_.creditAddress = reinterpret_cast<uintptr_t>(creditIn_.get());
  self_.creditKey = creditInMr_->rkey;
  self_.eagerBytes = static_cast<uint32_t>(opts_.eagerBytes);
  self_.creditLimit = static_cast<uint32_t>(creditLimit_);
  self_.psn = static_cast<uint32_t>(std::random_device{}()) & 0xffffff;
  self_.readDepth = responderReadDepth(*device_);
  self_.qpn.assign(id_.size, 0);
  peers_.resize(id_.size);
  for (int r = 0; r < id_.size; ++r) {
    if (r == id_.rank) continue;
    peers_[r].qp = createQueuePair(*device_, cq_.get(), srq_.get(), maxSendWr_);
    self_.qpn[r] = peers_[r].qp->qp_num;
    qpPeer_[peers_[r].qp->qp_num] = r;
  }
  peers_[id_.rank].address = self_.sideChannel;
  auto n = std::make_shared<RequestLabel::Names>();
  n->group = id_.describe();
  for (int r = 0; r < id_.size; ++r) n->peers.push_back("rank " + std::to_string(r));
  names_ = std::move(n);
  epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throwSystemError("verbs transport epoll", errno);
  const int asyncFd = device_->context()->async_fd;
  ::fcntl(asyncFd, F_SETFL, ::fcntl(asyncFd, F_GETFL) | O_NONBLOCK);
  for (int fd : {wakeup_.fd(), channel_->fd, side_->waitFd(), asyncFd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throwSystemError("verbs transport epoll_ctl", errno);
  }
  progress_ = std::make_shared<CallerProgress>([this] { return pollOnce(); });
  thread_ = std::thread([this] {
    nameThisThread("eccl-verbs");
    progressLoop();
  });
  logger().debug("{}: verbs transport on {}", id_.describe(), device_->describe());
}

// Completion queue and channel, shared receive queue with its buffers, send slots and the
// small registered tables.
void VerbsTransport::createQueues() {
  const ibv_device_attr& a = device_->attr();
  const uint64_t peers = std::max(1, id_.size - 1);
  creditLimit_ = std::clamp<uint64_t>(1024 / peers, 8, 64);
  if (a.max_srq_wr > 0 && creditLimit_ * peers > uint64_t(a.max_srq_wr))
    creditLimit_ = std::max<uint64_t>(kControlReserve + 2, uint64_t(a.max_srq_wr) / peers);
  recvBuffers_ = creditLimit_ * peers;
  sendSlots_ = std::min<size_t>(512, recvBuffers_ + 16);
  maxSendWr_ = std::min<uint32_t>(kMaxSendWr, a.max_qp_wr > 0 ? uint32_t(a.max_qp_wr) : kMaxSendWr);
  // Every work request completes into the one queue: it must hold them all.
  if (a.max_cqe > 0 && recvBuffers_ + uint64_t(maxSendWr_) * peers + 16 > uint64_t(a.max_cqe)) {
    const uint64_t room = uint64_t(a.max_cqe) > recvBuffers_ + 16 ? (uint64_t(a.max_cqe) - recvBuffers_ - 16) / peers : 0;
    if (room < 8)
      throw Error(ErrorCode::kInvalidArgument, "RDMA device " + device_->name() + ": its completion queues (" +
                                                   std::to_string(a.max_cqe) + " entries) are too small for " +
                                                   std::to_string(id_.size) + " ranks");
    maxSendWr_ = static_cast<uint32_t>(std::min<uint64_t>(maxSendWr_, room));
  }
  maxChunk_ = std::min<size_t>(device_->maxMessageBytes(), kMaxChunk);
  if (opts_.maxMessageBytes) maxChunk_ = std::min(maxChunk_, opts_.maxMessageBytes);
  slotBytes_ = roundUp(sizeof(WireHeader) + opts_.eagerBytes, 64);
  const std::string dev = "RDMA device " + device_->name();
  channel_.reset(ibv_create_comp_channel(device_->context()));
  if (!channel_) throw Error(ErrorCode::kSystem, dev + ": " + verbsError("ibv_create_comp_channel", errno));
  ::fcntl(channel_->fd, F_SETFL, ::fcntl(channel_->fd, F_GETFL) | O_NONBLOCK);
  const int cqe = static_cast<int>(recvBuffers_ + uint64_t(maxSendWr_) * peers + 16);
  cq_.reset(ibv_create_cq(device_->context(), cqe, nullptr, channel_.get(), 0));
  if (!cq_) throw Error(ErrorCode::kSystem, dev + ": " + verbsError("ibv_create_cq", errno) + " (" + std::to_string(cqe) + " entries)");
  ibv_srq_init_attr sa{};
  sa.attr.max_wr = static_cast<uint32_t>(recvBuffers_);
  sa.attr.max_sge = 1;
  srq_.reset(ibv_create_srq(device_->pd(), &sa));
  if (!srq_) throw Error(ErrorCode::kSystem, dev + ": " + verbsError("ibv_create_srq", errno) + " (" + std::to_string(recvBuffers_) + " buffers)");
  recvMem_ = std::make_unique<uint8_t[]>(recvBuffers_ * slotBytes_);
  sendMem_ = std::make_unique<uint8_t[]>(sendSlots_ * slotBytes_);
  creditIn_ = std::make_unique<uint64_t[]>(id_.size);
  creditOut_ = std::make_unique<uint64_t[]>(id_.size);
  landing_ = std::make_unique<uint64_t[]>(kLandingSlots);
  recvMr_ = registerRange(recvMem_.get(), recvBuffers_ * slotBytes_, IBV_ACCESS_LOCAL_WRITE, "receive buffers");
  sendMr_ = registerRange(sendMem_.get(), sendSlots_ * slotBytes_, 0, "send buffers");
  creditInMr_ = registerRange(creditIn_.get(), id_.size * sizeof(uint64_t), IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, "credits");
  creditOutMr_ = registerRange(creditOut_.get(), id_.size * sizeof(uint64_t), 0, "credits");
  guardMr_ = registerRange(guards_.words(), RegionGuards::bytes(), IBV_ACCESS_REMOTE_READ, "the guard table");
  landingMr_ = registerRange(landing_.get(), kLandingSlots * sizeof(uint64_t), IBV_ACCESS_LOCAL_WRITE, "guard reads");
  for (size_t i = 0; i < recvBuffers_; ++i) repostBuffer(static_cast<uint32_t>(i));
  if (postError_) throw Error(ErrorCode::kSystem, *postError_);
  for (size_t i = sendSlots_; i-- > 0;) freeSlots_.push_back(static_cast<uint32_t>(i));
  for (size_t i = kLandingSlots; i-- > 0;) freeLanding_.push_back(static_cast<uint32_t>(i));
  slotPeer_.assign(sendSlots_, -1);
  keyBase_ = static_cast<uint32_t>(std::random_device{}());
}

VerbsTransport::~VerbsTransport() {
  progress_->detach();
  {
    // What is posted or waiting for room goes first (the goodbye travels on another connection
    // and could overtake it).
    std::unique_lock lock(mu_);
    for (auto until = Clock::now() + std::chrono::seconds(2); connected_ && !broken_ && Clock::now() < until;) {
      bool sending = false;
      for (int r = 0; r < id_.size; ++r) {
        const Peer& p = peers_[r];
        sending |= r != id_.rank && !p.left && (p.sqOutstanding || !p.control.empty() || !p.eager.empty());
      }
      if (!sending) break;
      if (!pollLocked(true)) {
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
      }
    }
    if (connected_ && !broken_) side_->sendBye();
  }
  stop_.store(true);
  wakeup_.force();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + ": the transport was destroyed", false);
  // Members go in reverse order: queue pairs, operations, registrations, queues, device.
}

void VerbsTransport::connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) {
  if (static_cast<int>(addresses.size()) != id_.size)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect got " + std::to_string(addresses.size()) +
                                                 " addresses for a group of " + std::to_string(id_.size));
  std::vector<std::string> sideAddresses(id_.size);
  {
    std::lock_guard lock(mu_);
    if (connected_) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect called twice");
    for (int r = 0; r < id_.size; ++r) {
      const std::string whose = id_.describe() + ": rank " + std::to_string(r);
      VerbsAddress a = VerbsAddress::decode(addresses[r], whose);
      sideAddresses[r] = a.sideChannel;
      peers_[r].address = a.sideChannel;
      peers_[r].hostId = a.hostId;
      if (r == id_.rank) continue;
      if (static_cast<int>(a.qpn.size()) != id_.size)
        throw Error(ErrorCode::kProtocol, whose + " published queue pairs for " + std::to_string(a.qpn.size()) +
                                              " ranks; the group has " + std::to_string(id_.size));
      if (a.eagerBytes != self_.eagerBytes)
        throw Error(ErrorCode::kInvalidArgument, whose + " (" + a.sideChannel + ") uses " + std::to_string(a.eagerBytes) +
                                                     "-byte eager messages and this rank " + std::to_string(self_.eagerBytes) +
                                                     ": every rank must use the same VerbsOptions::eagerBytes");
      if (a.creditLimit == 0) throw Error(ErrorCode::kProtocol, whose + " published a credit limit of 0");
      peers_[r].creditAddress = a.creditAddress;
      peers_[r].creditKey = a.creditKey;
      peers_[r].credits = CreditLedger(a.creditLimit, creditLimit_, kControlReserve);
      connectQueuePair(peers_[r].qp.get(), *device_, a, a.qpn[id_.rank], self_.psn, opts_,
                       "rank " + std::to_string(r) + " (" + a.sideChannel + ")");
    }
    auto n = std::make_shared<RequestLabel::Names>();
    n->group = id_.describe();
    for (int r = 0; r < id_.size; ++r) n->peers.push_back(peerName(r));
    names_ = std::move(n);
  }
  // Every peer brings its queue pairs up before it shakes hands here, so once this returns no
  // message can reach a queue pair that is not ready for it.
  side_->connect(sideAddresses, deadline, giveUp);
  std::lock_guard lock(mu_);
  connected_ = true;
  int here = 0;
  for (auto& p : peers_) here += p.hostId == self_.hostId;
  progress_->setRanksOnHost(here);
  logger().debug("{}: connected over verbs ({})", id_.describe(), device_->describe());
}

std::string VerbsTransport::peerAddress(int peer) const {
  if (peer < 0 || peer >= id_.size) return "?";
  return peers_[peer].address + " over " + device_->name() + ":" + std::to_string(device_->port());
}

std::shared_ptr<RequestState> VerbsTransport::newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes) {
  return std::make_shared<RequestState>(RequestLabel{names_, kind, bytes, peer, tag}, progress_);
}

// Under mu_: false (and the request failed) when the transport is broken or (not for receives,
// which may still find what the peer sent before it left) the peer left.
bool VerbsTransport::admit(RequestState& req, int peer, bool receive) {
  if (broken_) {
    req.fail(brokenCode_, req.what() + " failed: " + *broken_);
    return false;
  }
  if (!connected_ && peer != id_.rank) throw Error(ErrorCode::kInvalidArgument, req.what() + ": connect() has not completed");
  if (!receive && peers_[peer].left) {
    req.fail(ErrorCode::kConnectionClosed, req.what() + " failed: " + peerName(peer) + " left the group");
    return false;
  }
  return true;
}

RequestPtr VerbsTransport::isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "send", data, bytes, region);
  // A large buffer outside every region is registered now, before the lock (pinning takes a
  // while) and while the announcement makes its round trip.
  MrPtr own = !region && bytes > opts_.eagerBytes && peer != id_.rank ? registerRange(data, bytes, 0, "a send's buffer") : nullptr;
  std::lock_guard lock(mu_);
  auto req = newRequest(RequestLabel::Op::kSend, peer, tag, bytes);
  if (!admit(*req, peer, false)) return req;
  auto* buf = static_cast<uint8_t*>(const_cast<void*>(data));
  if (peer == id_.rank) {
    if (selfMessages_.post(true, tag, req, buf, bytes)) setSelfCanceller(true, tag, req);
    return req;
  }
  if (bytes <= opts_.eagerBytes) {
    WireHeader h;
    h.type = MsgType::kEager;
    h.tag = tag;
    h.seq = matcher_.numberSend(peer, tag).seq;
    queueMessage(peer, h, data, bytes);
    req->complete();  // copied out (into a send slot or the queue)
    return req;
  }
  auto op = std::make_unique<SendOp>();
  op->mr = region ? mrFor(region, data, bytes, "a send's buffer") : std::move(own);
  op->req = req;
  op->peer = peer;
  op->data = buf;
  op->bytes = bytes;
  op->id = nextOpId_++;
  WireHeader h;
  h.type = MsgType::kRts;
  h.tag = tag;
  h.seq = matcher_.numberSend(peer, tag).seq;
  h.a = bytes;
  h.b = op->id;
  req->setCanceller([this, id = op->id] { cancelSend(id); });
  sends_.emplace(op->id, std::move(op));
  queueMessage(peer, h, nullptr, 0);
  return req;
}

// Under mu_: posts the message now if nothing queued for the peer is ahead of it and there is
// room, else queues a copy (eager data and control messages queue apart: see CreditLedger).
void VerbsTransport::queueMessage(int peer, const WireHeader& header, const void* payload, size_t bytes) {
  Peer& p = peers_[peer];
  if (p.left || p.errored) return;  // nobody to tell any more
  const bool eager = header.type == MsgType::kEager;
  auto& queue = eager ? p.eager : p.control;
  if (queue.empty() && postMessage(peer, header, payload, bytes)) return;
  Outgoing o;
  o.header = header;
  const auto* b = static_cast<const uint8_t*>(payload);
  if (bytes) o.payload.assign(b, b + bytes);
  queue.push_back(std::move(o));
  wakeup_.wake();
}

// Under mu_: SENDs the message from a free slot if the peer has a credit and the send queue
// room; false (nothing done) otherwise.
bool VerbsTransport::postMessage(int peer, WireHeader header, const void* payload, size_t bytes) {
  Peer& p = peers_[peer];
  if (p.left || p.errored || freeSlots_.empty() || p.sqOutstanding >= maxSendWr_) return false;
  p.credits.returned(__atomic_load_n(&creditIn_[peer], __ATOMIC_ACQUIRE));
  if (!p.credits.canSend(header.type != MsgType::kEager)) return false;
  const uint32_t slot = freeSlots_.back();
  uint8_t* at = sendMem_.get() + size_t(slot) * slotBytes_;
  header.credits = p.credits.freedCount();
  std::memcpy(at, &header, sizeof(header));
  if (bytes) std::memcpy(at + sizeof(header), payload, bytes);
  ibv_sge sge{reinterpret_cast<uintptr_t>(at), static_cast<uint32_t>(sizeof(header) + bytes), sendMr_->lkey};
  ibv_send_wr wr{};
  wr.wr_id = wrId(WrKind::kSendSlot, slot);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_SEND;
  if (!postSend(peer, wr)) return false;
  freeSlots_.pop_back();
  slotPeer_[slot] = peer;
  p.credits.sent();
  p.credits.report();
  return true;
}

// Under mu_: writes what fits of a send whose clear-to-send came; true once all is posted.
bool VerbsTransport::postWrites(SendOp& op) {
  Peer& p = peers_[op.peer];
  while (op.posted < op.bytes && !op.stopped) {
    if (p.dataInFlight >= kDataInFlight) return false;
    const size_t len = std::min(maxChunk_, op.bytes - op.posted);
    ibv_sge sge{reinterpret_cast<uintptr_t>(op.data + op.posted), static_cast<uint32_t>(len), op.mr->lkey};
    ibv_send_wr wr{};
    wr.wr_id = wrId(WrKind::kWrite, op.id);
    wr.sg_list = &sge;
    wr.num_sge = 1;
    wr.opcode = IBV_WR_RDMA_WRITE;
    wr.wr.rdma.remote_addr = op.remoteAddress + op.posted;
    wr.wr.rdma.rkey = op.rkey;
    if (!postSend(op.peer, wr)) return false;
    op.posted += len;
    ++op.outstanding;
    ++p.dataInFlight;
  }
  return true;
}

// Under mu_: posts `wr` on the peer's send queue; false when it is full. Another failure is
// kept in postError_ and breaks the transport after the current pass (not in the middle of it).
bool VerbsTransport::postSend(int peer, ibv_send_wr& wr) {
  Peer& p = peers_[peer];
  if (p.left || p.errored || p.sqOutstanding >= maxSendWr_) return false;
  ibv_send_wr* bad = nullptr;
  const int rc = ibv_post_send(p.qp.get(), &wr, &bad);
  if (rc == 0) {
    ++p.sqOutstanding;
    return true;
  }
  if (rc != ENOMEM && !postError_)
    postError_ = id_.describe() + ": posting to " + peerName(peer) + ": " + verbsError("ibv_post_send", rc);
  return false;
}

void VerbsTransport::repostBuffer(uint32_t buffer) {
  ibv_sge sge{reinterpret_cast<uintptr_t>(recvMem_.get() + size_t(buffer) * slotBytes_), static_cast<uint32_t>(slotBytes_),
              recvMr_->lkey};
  ibv_recv_wr wr{};
  wr.wr_id = wrId(WrKind::kRecvBuffer, buffer);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  if (int rc = ibv_post_srq_recv(srq_.get(), &wr, &bad); rc != 0 && !postError_)
    postError_ = id_.describe() + ": posting a receive buffer: " + verbsError("ibv_post_srq_recv", rc);
}

// Under mu_: posts what waited for room, in order; true if anything was posted.
bool VerbsTransport::drainQueues(int peer) {
  Peer& p = peers_[peer];
  if (p.left || p.errored) return false;
  const uint32_t before = p.sqOutstanding;
  while (!p.control.empty()) {
    Outgoing& o = p.control.front();
    bool done = true;
    if (o.kind == Outgoing::kMessage) {
      done = postMessage(peer, o.header, o.payload.data(), o.payload.size());
    } else if (o.kind == Outgoing::kWrite) {
      auto it = sends_.find(o.op);
      done = it == sends_.end() || postWrites(*it->second);
    } else {
      auto it = reads_.find(o.op);
      done = it == reads_.end() || postReads(*it->second);
    }
    if (!done) break;
    p.control.pop_front();
  }
  while (!p.eager.empty() && postMessage(peer, p.eager.front().header, p.eager.front().payload.data(), p.eager.front().payload.size()))
    p.eager.pop_front();
  return p.sqOutstanding != before;
}

// Under mu_: tells the peer by a small RDMA WRITE how many of its messages this rank has freed,
// when enough are owed and no message is going back to carry the count.
bool VerbsTransport::returnCredits(int peer) {
  Peer& p = peers_[peer];
  if (!p.credits.owesWrite(p.held.size()) || p.creditWriteInFlight || p.left || p.errored) return false;
  creditOut_[peer] = p.credits.freedCount();
  ibv_sge sge{reinterpret_cast<uintptr_t>(&creditOut_[peer]), sizeof(uint64_t), creditOutMr_->lkey};
  ibv_send_wr wr{};
  wr.wr_id = wrId(WrKind::kCredit, static_cast<uint64_t>(peer));
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_RDMA_WRITE;
  wr.wr.rdma.remote_addr = p.creditAddress + sizeof(uint64_t) * static_cast<uint64_t>(id_.rank);
  wr.wr.rdma.rkey = p.creditKey;
  if (!postSend(peer, wr)) return false;
  p.credits.report();
  p.creditWriteInFlight = true;
  return true;
}

void VerbsTransport::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + " aborted: " + reason, true);
}

}  // namespace eccl::transport::verbs

// The plugin's entry point, found by createTransport with dlsym.
extern "C" __attribute__((visibility("default"))) eccl::transport::Transport* eccl_create_verbs_transport(
    const eccl::transport::GroupIdentity& identity, const eccl::transport::VerbsOptions& options) {
  // Fork safety, before the first registration: where the kernel does not keep registered
  // pages safe across fork() by itself, libibverbs marks them not to be inherited.
  static const bool forkSafe = [] { return ibv_is_fork_initialized() != IBV_FORK_DISABLED || ibv_fork_init() == 0; }();
  (void)forkSafe;
  return new eccl::transport::verbs::VerbsTransport(identity, options);
}
