// The OFI transport's lifecycle and posting: endpoints per provider, connecting (address
// vectors + side channel), isend/irecv (pieces beyond the provider's message limit), messages
// to oneself, and the plugin's entry point.
#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>

#include <cstring>
#include <utility>

#include "base/env.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "transport/libfabric/ofi_transport_impl.h"

namespace eccl::transport::ofi {

OfiTransport::OfiTransport(GroupIdentity id, OfiOptions opts) : id_(std::move(id)), opts_(std::move(opts)) {
  if (id_.size <= 0 || id_.rank < 0 || id_.rank >= id_.size)
    throw Error(ErrorCode::kInvalidArgument, "bad group identity: rank " + std::to_string(id_.rank) + " of " + std::to_string(id_.size));
  if (opts_.host.empty()) throw Error(ErrorCode::kInvalidArgument, "ofi transport needs a host address for its side channel");
  mode_ = opts_.provider.empty() ? envString("ECCL_OFI_PROVIDER").value_or("auto") : opts_.provider;
  self_.hostId = opts_.hostId.empty() ? localHostId() : opts_.hostId;
  if (mode_ == "auto") {
    // shm where it works (peers on this host), a network provider for the rest.
    try {
      endpoints_.push_back(std::make_unique<Endpoint>("shm", opts_.host));
    } catch (const Error& e) {
      logger().warn("{}: shared memory is unavailable ({}); peers on this host use tcp", id_.describe(), e.what());
    }
    endpoints_.push_back(std::make_unique<Endpoint>("tcp", opts_.host));
  } else {
    endpoints_.push_back(std::make_unique<Endpoint>(mode_, opts_.host));
  }
  maxPiece_ = SIZE_MAX;
  for (auto& ep : endpoints_) {
    maxPiece_ = std::min(maxPiece_, ep->maxMessageBytes());
    self_.endpoints.push_back({ep->provider(), ep->name()});
  }
  if (opts_.maxMessageBytes) maxPiece_ = std::min(maxPiece_, opts_.maxMessageBytes);
  if (maxPiece_ == 0) throw Error(ErrorCode::kInvalidArgument, "ofi transport: a maximum message size of 0 bytes");
  side_ = std::make_unique<SideChannel>(id_, opts_.host);
  self_.sideChannel = side_->address();
  peers_.resize(id_.size);
  peers_[id_.rank].address = self_.sideChannel;
  auto n = std::make_shared<RequestLabel::Names>();
  n->group = id_.describe();
  for (int r = 0; r < id_.size; ++r) n->peers.push_back("rank " + std::to_string(r));
  names_ = std::move(n);
  progress_ = std::make_shared<CallerProgress>([this] { return pollOnce(); });
  progress_->setPromptTakeOver(false);  // (see CallerProgress::setPromptTakeOver)
  thread_ = std::thread([this] {
    nameThisThread("eccl-ofi");
    progressLoop();
  });
}

OfiTransport::~OfiTransport() {
  progress_->detach();
  {
    // Sends under way finish first (as the socket transport drains its queues): the goodbye
    // travels on another connection and could overtake them.
    std::unique_lock lock(mu_);
    for (auto until = Clock::now() + std::chrono::seconds(2); connected_ && !broken_ && Clock::now() < until;) {
      bool sending = false;
      ops_.forEach([&](Op& op) { sending |= op.kind == RequestLabel::Op::kSend && !peers_[op.peer].left; });
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
  // Endpoints first (the provider lets go of every Piece and buffer), then registrations, then
  // the rest of each provider's objects. A shm endpoint may instead be parked, open but never
  // progressed again, while a peer in this process is linked to it (shm_endpoint_keeper.h); its
  // receives were withdrawn above (shm withdraws no sends or reads: a live peer may still carry
  // those out, parked or not).
  for (auto& ep : endpoints_) ep->closeEndpoint();
  ops_.clear();
  regions_.clear();
  guardRegion_.reset();
  endpoints_.clear();
}

// Which of our endpoints talks to `rank`, whose address is `peer`.
int OfiTransport::endpointFor(const OfiAddress& peer, int rank) const {
  const bool sameHost = peer.hostId == self_.hostId;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const std::string& prov = endpoints_[i]->provider();
    if (!peer.find(prov)) continue;
    if (prov == "shm" && !sameHost) continue;
    if (mode_ == "auto" && prov != "shm" && sameHost && peer.find("shm") && endpoints_[0]->provider() == "shm") continue;
    return static_cast<int>(i);
  }
  std::string theirs;
  for (auto& e : peer.endpoints) theirs += (theirs.empty() ? "" : ", ") + e.provider;
  throw Error(ErrorCode::kInvalidArgument,
              id_.describe() + ": no libfabric provider reaches rank " + std::to_string(rank) + " (host '" + peer.hostId +
                  "', providers " + theirs + ") from this rank (host '" + self_.hostId + "', ECCL_OFI_PROVIDER=" + mode_ +
                  (mode_ == "shm" && !sameHost ? "; shm works only between ranks on one host" : "") + ")");
}

void OfiTransport::connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) {
  if (static_cast<int>(addresses.size()) != id_.size)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect got " + std::to_string(addresses.size()) +
                                                 " addresses for a group of " + std::to_string(id_.size));
  std::vector<std::string> sideAddresses(id_.size);
  {
    std::lock_guard lock(mu_);
    if (connected_) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect called twice");
    for (int r = 0; r < id_.size; ++r) {
      OfiAddress a = OfiAddress::decode(addresses[r], id_.describe() + ": rank " + std::to_string(r));
      sideAddresses[r] = a.sideChannel;
      peers_[r].address = a.sideChannel;
      peers_[r].hostId = a.hostId;
      if (r == id_.rank) continue;
      peers_[r].endpoint = endpointFor(a, r);
      Endpoint& ep = *endpoints_[peers_[r].endpoint];
      peers_[r].addr = ep.insert(a.find(ep.provider())->name);
    }
    auto n = std::make_shared<RequestLabel::Names>();
    n->group = id_.describe();
    for (int r = 0; r < id_.size; ++r)
      n->peers.push_back(peerName(r));
    names_ = std::move(n);
    // Only endpoints that carry some peer's data need polling (an idle tcp;ofi_rxm endpoint
    // would cost a poll system call on every pass of a waiter polling shm).
    for (size_t i = 0; i < endpoints_.size(); ++i)
      for (int r = 0; r < id_.size; ++r)
        if (r != id_.rank && peers_[r].endpoint == int(i)) {
          polled_.push_back(endpoints_[i].get());
          break;
        }
  }
  side_->connect(sideAddresses, deadline, giveUp);  // handshake: group, epoch and ranks checked
  std::lock_guard lock(mu_);
  connected_ = true;
  // Ranks of this host against the cores this process may run on.
  int here = 0;
  for (auto& p : peers_) here += p.hostId == self_.hostId;
  progress_->setRanksOnHost(here);
  std::string how;
  for (int r = 0; r < id_.size; ++r)
    if (r != id_.rank) how += (how.empty() ? "" : ", ") + std::to_string(r) + ":" + endpoints_[peers_[r].endpoint]->provider();
  logger().debug("{}: connected over libfabric ({})", id_.describe(), how);
}

std::string OfiTransport::peerAddress(int peer) const {
  if (peer < 0 || peer >= id_.size) return "?";
  const PeerInfo& p = peers_[peer];
  return p.endpoint < 0 ? p.address : p.address + " over " + endpoints_[p.endpoint]->provider();
}

std::shared_ptr<RequestState> OfiTransport::newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes) {
  return std::make_shared<RequestState>(RequestLabel{names_, kind, bytes, peer, tag}, progress_);
}

// Under mu_: false (and the request failed) when the transport is broken or the peer left.
bool OfiTransport::admit(RequestState& req, int peer) {
  if (broken_) {
    req.fail(brokenCode_, req.what() + " failed: " + *broken_);
    return false;
  }
  if (!connected_ && peer != id_.rank) throw Error(ErrorCode::kInvalidArgument, req.what() + ": connect() has not completed");
  if (peers_[peer].left) {
    req.fail(ErrorCode::kConnectionClosed, req.what() + " failed: " + peerName(peer) + " left the group");
    return false;
  }
  return true;
}

// The descriptor a provider needs for [data, data + bytes): the region's, or a registration
// made for this operation when the provider requires local registration (else none).
void* OfiTransport::descriptor(Op& op, int endpoint, void* data, size_t bytes, const MemoryRegion* region, uint64_t access) {
  Endpoint& ep = *endpoints_[endpoint];
  if (region) {
    auto it = regions_.find(region->id);
    if (it == regions_.end())
      throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": the region given is not registered with this transport");
    return fi_mr_desc(it->second.mrs[endpoint].get());
  }
  if (!ep.needsLocalRegistration() || bytes == 0) return nullptr;
  fid_mr* mr = nullptr;
  long ret = fi_mr_reg(ep.domain(), data, bytes, access, 0, 0, 0, &mr, nullptr);
  if (ret != 0) throw Error(ErrorCode::kSystem, id_.describe() + ": registering " + std::to_string(bytes) + " bytes for one operation: " + fiError("fi_mr_reg", ret));
  op.mr.reset(mr);
  return fi_mr_desc(mr);
}

// Posts `op` as pieces of at most maxPiece_ bytes, each by `fn(piece, offset)`. What the provider
// has no room for (-FI_EAGAIN) waits in the peer's backlog, behind which later operations to that
// peer queue up (equal tags keep their order); progress posts it as completions free room.
ssize_t PostArgs::post(Piece& piece, size_t offset) const {
  switch (verb) {
    case kSend: return fi_tsend(ep, buf + offset, piece.bytes, desc, addr, tag, &piece.ctx);
    case kInject: return fi_tinject(ep, buf + offset, piece.bytes, addr, tag);
    case kRecv: return fi_trecv(ep, buf + offset, piece.bytes, desc, addr, tag, 0, &piece.ctx);
    case kRead: return fi_read(ep, buf + offset, piece.bytes, desc, addr, remote + offset, tag, &piece.ctx);
  }
  return -FI_EINVAL;
}

void OpList::add(std::unique_ptr<Op> op) {
  Op* o = op.release();
  o->next = head_;
  if (head_) head_->prev = o;
  head_ = o;
}

void OpList::erase(Op* o) {
  (o->prev ? o->prev->next : head_) = o->next;
  if (o->next) o->next->prev = o->prev;
  delete o;
}

void OpList::clear() {
  while (head_) erase(head_);
}

Op* OpList::find(const RequestState* req) const {
  for (Op* o = head_; o; o = o->next)
    if (o->req.get() == req) return o;
  return nullptr;
}

// A new operation for `req`, which its canceller withdraws.
std::unique_ptr<Op> OfiTransport::newOp(const std::shared_ptr<RequestState>& req, RequestLabel::Op kind, int peer) {
  auto op = std::make_unique<Op>();
  op->req = req;
  op->kind = kind;
  op->peer = peer;
  req->setCanceller([this, state = req.get()] { cancelOp(state); });  // (fits std::function's small buffer)
  return op;
}

void OfiTransport::post(std::unique_ptr<Op> owned, size_t bytes, const PostArgs& args) {
  wakeup_.wake();  // it drains completions and the backlog while nobody waits
  Op* op = owned.get();
  ops_.add(std::move(owned));
  op->bytes = bytes;
  op->pieceBytes = maxPiece_;
  op->pieceCount = bytes == 0 ? 1 : 1 + (bytes - 1) / maxPiece_;  // (maxPiece_ may be SIZE_MAX)
  op->args = args;
  auto& backlog = peers_[op->peer].backlog;
  if (!backlog.empty() || !postPieces(*op)) {
    op->inBacklog = true;
    backlog.push_back(op);
    return;
  }
  if (op->outstanding == 0) finish(*op);
}

bool OfiTransport::repost(Op& op, size_t bytes, const PostArgs& args) {
  op.more.clear();  // every piece of the last stage has completed
  op.firstPosted = false;
  op.bytes = bytes;
  op.pieceCount = bytes == 0 ? 1 : 1 + (bytes - 1) / op.pieceBytes;
  op.nextPiece = 0;
  op.args = args;
  auto& backlog = peers_[op.peer].backlog;
  if (!backlog.empty() || !postPieces(op)) {
    op.inBacklog = true;
    backlog.push_back(&op);
    return true;
  }
  return op.outstanding > 0;
}

bool OfiTransport::postPieces(Op& op) {
  while (op.nextPiece < op.pieceCount && !op.error) {
    // The first piece lives in the Op (most operations have one); more are allocated.
    std::unique_ptr<Piece> extra = op.nextPiece == 0 ? nullptr : std::make_unique<Piece>();
    Piece& piece = extra ? *extra : op.first;
    piece.op = &op;
    const size_t offset = op.nextPiece * op.pieceBytes;
    piece.bytes = std::min(op.pieceBytes, op.bytes - offset);
    ssize_t ret = op.args.post(piece, offset);
    // No room now (shm says -FI_ENOMEM when its receive entries run out): wait in the backlog.
    if (ret == -FI_EAGAIN || ret == -FI_ENOMEM) return false;
    if (ret != 0) {
      op.error = {ErrorCode::kSystem, fiError("posting to libfabric", ret)};
      withdraw(op);
      break;
    }
    ++op.nextPiece;
    if (op.args.verb == PostArgs::kInject) continue;  // copied out already; no completion comes
    ++op.outstanding;
    op.firstPosted |= !extra;
    if (extra) op.more.push_back(std::move(extra));
  }
  return true;
}

// Under mu_: posts what waited for room; true if anything was posted.
bool OfiTransport::drainBacklogs() {
  bool moved = false, looked = false;
  for (auto& p : peers_) {
    // A peer killed inside the provider can leave a lock of its own shared region held for good
    // (libfabric 1.17's shm spins on it in the next send to that peer, under our lock): before
    // the first retry, which is when that send would come, look for a lost peer.
    if (!p.backlog.empty() && !std::exchange(looked, true) && lostPeerReason()) {
      handleSideChannel();  // (fails what waits; the next poll drains whatever is left)
      return moved;
    }
    while (!p.backlog.empty()) {
      Op* op = p.backlog.front();
      const size_t before = op->nextPiece;
      const bool done = postPieces(*op);
      moved |= op->nextPiece != before;
      if (!done) break;
      p.backlog.pop_front();
      op->inBacklog = false;
      if (op->outstanding == 0) finish(*op);
    }
  }
  return moved;
}

void OfiTransport::postSelf(bool send, Tag tag, const std::shared_ptr<RequestState>& req, uint8_t* data, size_t bytes) {
  if (!selfMessages_.post(send, tag, req, data, bytes)) return;
  req->setCanceller([this, send, tag, state = req.get()] {
    std::lock_guard l(mu_);
    selfMessages_.withdraw(send, tag, state);
  });
}

RequestPtr OfiTransport::isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "send", data, bytes, region);
  std::lock_guard lock(mu_);
  auto req = newRequest(RequestLabel::Op::kSend, peer, tag, bytes);
  if (!admit(*req, peer)) return req;
  auto* buf = static_cast<uint8_t*>(const_cast<void*>(data));
  if (peer == id_.rank) {
    postSelf(true, tag, req, buf, bytes);
    return req;
  }
  const PeerInfo& p = peers_[peer];
  const Endpoint& carrier = *endpoints_[p.endpoint];
  fid_ep* ep = carrier.ep();
  // Small sends over shm are injected: written into the peer's queue before fi_tinject returns,
  // so done at once, with nothing to track (the latency path). Other providers may still hold
  // injected data after returning, where a teardown right after would lose it.
  const bool inject = carrier.provider() == "shm" && bytes <= carrier.injectBytes() && bytes <= maxPiece_;
  if (inject && p.backlog.empty() && fi_tinject(ep, buf, bytes, p.addr, tag) == 0) {
    req->complete();
    return req;
  }
  auto op = newOp(req, RequestLabel::Op::kSend, peer);
  void* desc = descriptor(*op, p.endpoint, buf, bytes, region, FI_SEND);
  post(std::move(op), bytes, PostArgs{inject ? PostArgs::kInject : PostArgs::kSend, ep, buf, desc, p.addr, tag});
  return req;
}

RequestPtr OfiTransport::irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "receive", data, bytes, region);
  std::unique_lock lock(mu_);
  auto req = newRequest(RequestLabel::Op::kRecv, peer, tag, bytes);
  // A peer that said goodbye sends nothing more, but what it sent before may still wait in the
  // provider (unexpected): the receive is posted all the same (see settleDepartedReceive).
  const bool departed = peer != id_.rank && !broken_ && peers_[peer].left;
  if (!departed && !admit(*req, peer)) return req;
  auto* buf = static_cast<uint8_t*>(data);
  if (peer == id_.rank) {
    postSelf(false, tag, req, buf, bytes);
    return req;
  }
  auto op = newOp(req, RequestLabel::Op::kRecv, peer);
  const PeerInfo& p = peers_[peer];
  void* desc = descriptor(*op, p.endpoint, buf, bytes, region, FI_RECV);
  post(std::move(op), bytes, PostArgs{PostArgs::kRecv, endpoints_[p.endpoint]->ep(), buf, desc, p.addr, tag});
  if (departed) {
    lock.unlock();
    settleDepartedReceive(req, peer);
  }
  return req;
}

void OfiTransport::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + " aborted: " + reason, true);
}

}  // namespace eccl::transport::ofi

// The plugin's entry point, found by createTransport with dlsym.
extern "C" __attribute__((visibility("default"))) eccl::transport::Transport* eccl_create_ofi_transport(
    const eccl::transport::GroupIdentity& identity, const eccl::transport::OfiOptions& options) {
  // Before libfabric reads its parameters (first fi_getinfo), and only where the user set none:
  // ofi_rxm posts 128 × 16 KiB receive buffers per connection by default, ~80 MiB per endpoint
  // on loopback; 32 keep small messages flowing at a quarter of the memory.
  static const bool defaults = [] { return ::setenv("FI_OFI_RXM_MSG_RX_SIZE", "32", 0) == 0; }();
  (void)defaults;
  return new eccl::transport::ofi::OfiTransport(identity, options);
}
