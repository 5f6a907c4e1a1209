// The shared-memory transport: lifecycle, connecting, posting sends and receives, and writing
// records into peers' rings.
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>

#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "transport/argument_checks.h"
#include "transport/host_identity.h"
#include "transport/shm/shm_transport_impl.h"

namespace eccl::transport {

size_t ShmOptions::defaultRingBytes(int groupSize) {
  size_t ring = 256 * 1024;
  while (ring > 32 * 1024 && ring * static_cast<size_t>(std::max(groupSize, 1)) > (size_t(8) << 20)) ring /= 2;
  return ring;
}

std::unique_ptr<Transport> createShmTransport(GroupIdentity identity, ShmOptions options) {
  return std::make_unique<shm::ShmTransport>(std::move(identity), std::move(options));
}

namespace shm {
namespace {

GroupIdentity checkedIdentity(GroupIdentity id) {
  if (id.size <= 0 || id.rank < 0 || id.rank >= id.size)
    throw Error(ErrorCode::kInvalidArgument, "bad group identity: rank " + std::to_string(id.rank) + " of " + std::to_string(id.size));
  return id;
}

ShmOptions checkedOptions(ShmOptions o, int groupSize) {
  if (o.ringBytes == 0) o.ringBytes = ShmOptions::defaultRingBytes(groupSize);
  if (o.eagerBytes == 0) o.eagerBytes = ShmOptions::kDefaultEagerBytes;
  if (o.host.empty()) throw Error(ErrorCode::kInvalidArgument, "shared-memory transport needs a host address for its side channel");
  if (o.ringBytes < 4096 || (o.ringBytes & (o.ringBytes - 1)) != 0 || o.ringBytes > (size_t(1) << 30))
    throw Error(ErrorCode::kInvalidArgument, "shared-memory ring size (ECCL_SHM_RING_BYTES) must be a power of two from 4096 to 1 GiB, got " +
                                                 std::to_string(o.ringBytes));
  if (o.eagerBytes + sizeof(MessageRecord) + kRecordAlign > o.ringBytes / 2)
    throw Error(ErrorCode::kInvalidArgument, "shared-memory eager limit (ECCL_SHM_EAGER_BYTES) " + std::to_string(o.eagerBytes) +
                                                 " must leave a record at most half the ring (" + std::to_string(o.ringBytes) + " bytes)");
  if (!o.poolBytes) o.poolBytes = ShmOptions::kDefaultPoolBytes;
  if (*o.poolBytes > kMaxPoolBytes)
    throw Error(ErrorCode::kInvalidArgument, "shared-memory pool (ECCL_SHM_POOL_BYTES) must be at most 1 GiB, got " + std::to_string(*o.poolBytes));
  if (*o.poolBytes == 0) {
    o.chunkBytes = 0;
    return o;
  }
  if (*o.poolBytes < 4096)
    throw Error(ErrorCode::kInvalidArgument, "shared-memory pool (ECCL_SHM_POOL_BYTES) must be 0 (none) or at least 4096 bytes, got " +
                                                 std::to_string(*o.poolBytes));
  if (o.chunkBytes == 0) o.chunkBytes = std::max<size_t>(4096, std::min(ShmOptions::kDefaultChunkBytes, *o.poolBytes & ~size_t(4095)));
  if (o.chunkBytes % 4096 || o.chunkBytes > *o.poolBytes)
    throw Error(ErrorCode::kInvalidArgument, "shared-memory chunk size (ECCL_SHM_CHUNK_BYTES) must be a multiple of 4096 from 4096 to the pool size (" +
                                                 std::to_string(*o.poolBytes) + " bytes, ECCL_SHM_POOL_BYTES), got " + std::to_string(o.chunkBytes));
  *o.poolBytes -= *o.poolBytes % o.chunkBytes;  // whole slots
  return o;
}

uint64_t identityHash(const GroupIdentity& id) {
  return std::hash<std::string>{}(id.group) * 31 + id.epoch * 1000003 + static_cast<uint64_t>(id.size);
}

}  // namespace

ShmTransport::ShmTransport(GroupIdentity id, ShmOptions opts)
    : id_(checkedIdentity(std::move(id))), opts_(checkedOptions(std::move(opts), id_.size)), matcher_(id_.size, opts_.unexpectedBudget) {
  segment_ = SharedSegment::create(segmentBytes(id_.size, opts_.ringBytes, *opts_.poolBytes), id_.describe());
  auto* h = new (segment_.data()) SegmentHeader;
  h->magic = kSegmentMagic;
  h->identity = identityHash(id_);
  h->rank = id_.rank;
  h->size = id_.size;
  h->ringBytes = opts_.ringBytes;
  for (int r = 0; r < id_.size; ++r) new (ringAt(segment_.data(), r, opts_.ringBytes)) RingIndices;
  peers_.resize(id_.size);
  stopSide_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!stopSide_) throwSystemError(id_.describe() + ": eventfd", errno);
  side_ = std::make_unique<SideChannel>(id_, opts_.host);
  self_.hostId = opts_.hostId.empty() ? localHostId() : opts_.hostId;
  self_.sideChannel = side_->address();
  self_.pid = ::getpid();
  self_.fd = segment_.fd();
  self_.segmentBytes = segment_.size();
  self_.ringBytes = opts_.ringBytes;
  self_.probeAddress = reinterpret_cast<uint64_t>(segment_.data());
  self_.poolBytes = *opts_.poolBytes;
  self_.chunkBytes = opts_.chunkBytes;
  const size_t slots = self_.poolBytes ? self_.poolBytes / self_.chunkBytes : 0;
  for (size_t s = slots; s-- > 0;) freeChunks_.push_back(s);
  chunkPeer_.assign(slots, -1);
  chunksHeld_.assign(id_.size, 0);
  chunkCap_ = std::max<size_t>(1, slots / 2);
  std::random_device rd;
  keyBase_ = (uint64_t(rd()) << 32 | rd()) & ~uint64_t(0xffffffff);
  for (size_t s = kRegistrationSlots; s-- > 0;) freeSlots_.push_back(s);
  peers_[id_.rank].address = self_.sideChannel;
  updateNames();
  progress_ = std::make_shared<CallerProgress>([this] { return pollOnce(); });
  thread_ = std::thread([this] {
    nameThisThread("eccl-shm");
    progressLoop();
  });
}

ShmTransport::~ShmTransport() {
  {
    // Regions end with the transport: readers must see that before the caller frees them.
    std::lock_guard lock(mu_);
    for (auto& [id, reg] : regions_) header()->registrations[reg.slot].store(0, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  progress_->detach();
  {
    // Sends under way finish first: the goodbye travels on the side channel and could overtake
    // them (a large send is under way until its receiver has copied it).
    std::unique_lock lock(mu_);
    for (auto until = Clock::now() + std::chrono::seconds(2); connected_ && !broken_ && Clock::now() < until;) {
      bool sending = false;
      for (auto& p : peers_) sending |= !p.left && (!p.announced.empty() || !p.backlog.empty());
      if (!sending) break;
      if (!pollLocked()) {
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
      }
    }
    if (connected_ && !broken_) side_->sendBye();
  }
  stop_.store(true);
  wakeProgress();
  uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(stopSide_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  if (sideThread_.joinable()) sideThread_.join();
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + ": the transport was destroyed", false);
}

void ShmTransport::updateNames() {
  auto n = std::make_shared<RequestLabel::Names>();
  n->group = id_.describe();
  for (int r = 0; r < id_.size; ++r) n->peers.push_back(peerName(r));
  names_ = std::move(n);
}

std::string ShmTransport::peerAddress(int peer) const {
  if (peer < 0 || peer >= id_.size) return "?";
  return peers_[peer].address.empty() ? std::string("?") : peers_[peer].address + " over shared memory";
}

// Maps rank r's segment and checks it belongs to this group.
void ShmTransport::openPeer(int r, const ShmAddress& a) {
  const std::string whose = "rank " + std::to_string(r) + " (" + a.sideChannel + ", pid " + std::to_string(a.pid) + ")";
  // (Bounded before any sum, so nothing wraps.)
  if (a.ringBytes < 4096 || (a.ringBytes & (a.ringBytes - 1)) || a.ringBytes > (size_t(1) << 30) || a.poolBytes > kMaxPoolBytes ||
      a.segmentBytes != segmentBytes(id_.size, a.ringBytes, a.poolBytes) ||
      (a.poolBytes && (a.chunkBytes == 0 || a.chunkBytes % 4096 || a.poolBytes % a.chunkBytes)))
    throw Error(ErrorCode::kProtocol, id_.describe() + ": " + whose + " published a shared segment of an unexpected size");
  if (opts_.eagerBytes + sizeof(MessageRecord) + kRecordAlign > a.ringBytes / 2)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": " + whose + " has " + std::to_string(a.ringBytes) +
                                                 "-byte rings, too small for this rank's eager limit of " + std::to_string(opts_.eagerBytes) +
                                                 " bytes (set ECCL_SHM_RING_BYTES and ECCL_SHM_EAGER_BYTES alike on every rank)");
  Peer& p = peers_[r];
  p.segment = SharedSegment::open(a.pid, a.fd, a.segmentBytes, whose);
  p.header = reinterpret_cast<SegmentHeader*>(p.segment.data());
  if (p.header->magic != kSegmentMagic || p.header->identity != identityHash(id_) || p.header->rank != r || p.header->size != id_.size)
    throw Error(ErrorCode::kConnectFailed, id_.describe() + ": the shared memory of " + whose + " belongs to another group, epoch or rank");
  p.out = RingWriter(ringAt(p.segment.data(), id_.rank, a.ringBytes), a.ringBytes);
  p.in = RingReader(ringAt(segment_.data(), r, opts_.ringBytes), opts_.ringBytes);
  if (a.poolBytes) {
    p.pool = p.segment.data() + poolOffset(id_.size, a.ringBytes);
    p.chunkBytes = a.chunkBytes;
    p.poolSlots = a.poolBytes / a.chunkBytes;
  }
  p.pid = a.pid;
  p.address = a.sideChannel;
  p.member = true;
}

void ShmTransport::connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) {
  if (static_cast<int>(addresses.size()) != id_.size)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect needs " + std::to_string(id_.size) + " addresses, got " +
                                                 std::to_string(addresses.size()));
  std::vector<std::string> side(id_.size);
  std::vector<ShmAddress> peerAddrs(id_.size);
  {
    std::lock_guard lock(mu_);
    if (connected_ || sideThread_.joinable()) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect called twice");
    for (int r = 0; r < id_.size; ++r) {
      if (r == id_.rank || addresses[r].empty()) continue;  // empty: another transport carries this pair
      ShmAddress a = ShmAddress::decode(addresses[r], id_.describe() + ": rank " + std::to_string(r));
      if (a.hostId != self_.hostId)
        throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": rank " + std::to_string(r) + " is on host '" + a.hostId +
                                                     "', this rank on '" + self_.hostId +
                                                     "': shared memory reaches only ranks of one host (ECCL_TRANSPORT=auto picks per pair)");
      openPeer(r, a);
      side[r] = a.sideChannel;
      peerAddrs[r] = a;
    }
    updateNames();
  }
  side_->connect(side, deadline, giveUp);
  // Every peer must be allowed to read our memory and we theirs: find out now, not mid-transfer.
  for (int r = 0; r < id_.size; ++r) {
    if (!peers_[r].member) continue;
    uint64_t magic = 0;
    iovec local{&magic, sizeof magic}, remote{reinterpret_cast<void*>(peerAddrs[r].probeAddress), sizeof magic};
    if (::process_vm_readv(peerAddrs[r].pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof magic) || magic != kSegmentMagic)
      throw Error(ErrorCode::kConnectFailed, id_.describe() + ": cannot read the memory of " + peerName(r) + ", pid " +
                                                 std::to_string(peerAddrs[r].pid) + " (process_vm_readv: " + std::strerror(errno) +
                                                 "); shared memory needs ranks of one user without ptrace restrictions "
                                                 "(kernel.yama.ptrace_scope 0) — or use ECCL_TRANSPORT=socket");
  }
  std::lock_guard lock(mu_);
  connected_ = true;
  int here = 0;
  for (int r = 0; r < id_.size; ++r)
    if (peers_[r].member) {
      ++here;
      inbound_.push_back(ringAt(segment_.data(), r, opts_.ringBytes));
    }
  ready_.store(true, std::memory_order_release);
  progress_->setRanksOnHost(here + 1);
  sideThread_ = std::thread([this] {
    nameThisThread("eccl-shm-side");
    sideChannelLoop();
  });
  logger().debug("{}: connected to {} peers over shared memory", id_.describe(), here);
}

std::shared_ptr<RequestState> ShmTransport::newRequest(RequestLabel::Op kind, int peer, Tag tag, size_t bytes) {
  return std::make_shared<RequestState>(label(kind, peer, tag, bytes), progress_);
}

// Under mu_: false (and the request failed) when the transport is broken or the peer gone.
bool ShmTransport::admit(RequestState& req, int peer) {
  if (broken_) {
    req.fail(brokenCode_, req.what() + " failed: " + *broken_);
    return false;
  }
  if (peer == id_.rank) return true;
  if (!connected_) throw Error(ErrorCode::kInvalidArgument, req.what() + ": connect() has not completed");
  if (!peers_[peer].member)
    throw Error(ErrorCode::kInvalidArgument, req.what() + ": rank " + std::to_string(peer) + " is not reached through shared memory");
  return true;
}

// Under mu_: a peer that said goodbye sends nothing more (what it sent before is still received).
bool ShmTransport::departed(RequestState& req, int peer) {
  if (!peers_[peer].left) return false;
  req.fail(ErrorCode::kConnectionClosed, req.what() + " failed: " + peerName(peer) + " left the group");
  return true;
}

// A large message to a peer goes through our pool when we have one (the receiver pulls it): the
// chunk copies write the local copy too. Anything else is sent, then copied.
RequestPtr ShmTransport::isendAndCopy(int peer, Tag tag, const void* data, size_t bytes, void* copyTo, const MemoryRegion* region) {
  if (peer == id_.rank || bytes <= opts_.eagerBytes || *opts_.poolBytes == 0)
    return Transport::isendAndCopy(peer, tag, data, bytes, copyTo, region);
  checkCopyTarget(id_, peer, data, bytes, copyTo);
  return send(peer, tag, data, bytes, region, static_cast<uint8_t*>(copyTo));
}

RequestPtr ShmTransport::send(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region, uint8_t* copyTo) {
  checkOperation(id_, peer, "send", data, bytes, region);
  std::lock_guard lock(mu_);
  // The common case first: a small message with room in the peer's ring is copied there now
  // and needs no request of its own.
  if (peer != id_.rank && bytes <= opts_.eagerBytes && !broken_ && connected_ && peers_[peer].member && !peers_[peer].left &&
      peers_[peer].backlog.empty()) {
    SendOp s;
    s.data = static_cast<const uint8_t*>(data);
    s.bytes = bytes;
    s.key = matcher_.numberSend(peer, tag);
    if (writeMessage(peer, kEager, s)) {
      ringDoorbells();
      return completedRequest();
    }
    matcher_.unnumberSend(peer, tag);
  }
  auto [op, req] = makeOperation<SendOp>(label(RequestLabel::Op::kSend, peer, tag, bytes), progress_);
  if (!admit(*req, peer)) return req;
  op->data = static_cast<const uint8_t*>(data);
  op->bytes = bytes;
  op->key = matcher_.numberSend(peer, tag);
  op->owner = this;
  op->peer = peer;
  req->setCanceller(op, [](const std::shared_ptr<void>& o) {
    auto op = std::static_pointer_cast<SendOp>(o);
    op->owner->cancelSend(op->peer, op);
  });
  if (peer == id_.rank) {
    if (auto r = matcher_.unpost(peer, op->key)) completeLocalMatch(*req, op->data, bytes, *r->req, r->data, r->bytes);
    else if (matcher_.receiveNumbered(peer, op->key)) req->complete();  // its receive was cancelled: dropped
    else selfSends_.emplace(op->key, op);
    return req;
  }
  Peer& p = peers_[peer];
  if (departed(*req, peer)) return req;
  if (bytes <= opts_.eagerBytes) {
    if (p.backlog.empty() && write(peer, {kEager, op, 0})) {
      req->complete();
      ringDoorbells();
    } else {
      emit(peer, {kEager, op, 0});
    }
    return req;
  }
  op->id = nextSendId_++;
  op->copyTo = copyTo;
  p.announced.emplace(op->id, op);
  emit(peer, {kAnnounce, op, op->id});
  if (p.grants.erase(op->key)) {  // its receive is posted: the chunks follow the announcement at once
    stream(op);
    pumpStreams();
  }
  ringDoorbells();
  return req;
}

RequestPtr ShmTransport::irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) {
  checkOperation(id_, peer, "receive", data, bytes, region);
  std::lock_guard lock(mu_);
  auto [op, req] = makeOperation<RecvOp>(label(RequestLabel::Op::kRecv, peer, tag, bytes), progress_);
  if (!admit(*req, peer)) return req;
  op->data = static_cast<uint8_t*>(data);
  op->bytes = bytes;
  op->key = matcher_.numberReceive(peer, tag);
  op->owner = this;
  op->peer = peer;
  req->setCanceller(op, [](const std::shared_ptr<void>& o) {
    auto op = std::static_pointer_cast<RecvOp>(o);
    op->owner->cancelRecv(op->peer, op);
  });
  if (peer == id_.rank) {
    auto it = selfSends_.find(op->key);
    if (it == selfSends_.end()) {
      matcher_.post(peer, op->key, op);
    } else {
      auto s = it->second;
      selfSends_.erase(it);
      completeLocalMatch(*s->req, s->data, s->bytes, *req, op->data, bytes);
    }
    return req;
  }
  Peer& p = peers_[peer];
  if (matcher_.unexpected(peer, op->key)) {
    receiveUnexpected(peer, op);
  } else if (auto w = p.waiting.find(op->key); w != p.waiting.end()) {
    const Announcement a = w->second;
    p.waiting.erase(w);
    receiveAnnounced(peer, op, a);
  } else if (!p.revoked.empty() && p.revoked.erase(op->key)) {
    req->fail(ErrorCode::kAborted, req->what() + " failed: " + peerName(peer) + " cancelled this message before it was received");
  } else if (!(p.left && !p.in.front() && departed(*req, peer))) {  // (records of its may still come)
    matcher_.post(peer, op->key, op);
    grant(peer, *op);
  }
  ringDoorbells();
  return req;
}

namespace {

// Room for a record of type `type` (plus `extra` bytes after it) in `out`, its header filled in
// (the size is reserve()'s); null when the ring has no room now.
template <class Record>
Record* placeRecord(RingWriter& out, RecordType type, size_t extra = 0) {
  uint8_t* at = out.reserve(sizeof(Record) + extra);
  if (!at) return nullptr;
  auto* r = reinterpret_cast<Record*>(at);
  r->h.type = type;
  r->h.flags = 0;
  return r;
}

}  // namespace

// Under mu_: writes one record into `peer`'s ring; false when it has no room now.
bool ShmTransport::write(int peer, const Outgoing& o) {
  Peer& p = peers_[peer];
  if (o.type == kEager || o.type == kAnnounce) return writeMessage(peer, o.type, *o.op);
  if (o.type == kGrant) {
    auto* m = placeRecord<MessageRecord>(p.out, kGrant);
    if (!m) return false;
    m->tag = o.key.tag;
    m->seq = o.key.seq;
    m->bytes = m->address = m->sendId = 0;
  } else if (o.type == kChunk || o.type == kFreed) {
    auto* c = placeRecord<ChunkRecord>(p.out, o.type);
    if (!c) return false;
    c->sendId = o.sendId;
    c->offset = o.offset;
    c->length = o.length;
    c->slot = o.slot;
  } else {
    auto* c = placeRecord<ControlRecord>(p.out, o.type);
    if (!c) return false;
    c->sendId = o.sendId;
  }
  p.out.commit();
  p.wrote = true;
  return true;
}

// Under mu_: a kEager (with its bytes) or kAnnounce record for `s`; false when no room.
bool ShmTransport::writeMessage(int peer, RecordType type, const SendOp& s) {
  Peer& p = peers_[peer];
  const size_t payload = type == kEager ? s.bytes : 0;
  auto* m = placeRecord<MessageRecord>(p.out, type, payload);
  if (!m) return false;
  m->tag = s.key.tag;
  m->seq = s.key.seq;
  m->bytes = s.bytes;
  m->address = reinterpret_cast<uint64_t>(s.data);
  m->sendId = s.id;
  if (payload) std::memcpy(reinterpret_cast<uint8_t*>(m) + sizeof(MessageRecord), s.data, payload);
  p.out.commit();
  p.wrote = true;
  return true;
}

bool ShmTransport::emit(int peer, Outgoing o) {
  Peer& p = peers_[peer];
  if (p.backlog.empty() && write(peer, o)) return true;
  if (p.backlog.empty()) {
    backlogged_.fetch_add(1, std::memory_order_relaxed);
    if (header()->sleeping.load(std::memory_order_relaxed)) wakeProgress();  // it must drain it
  }
  p.backlog.push_back(std::move(o));
  return false;
}

// Under mu_: writes what waited for room; true if anything was written.
bool ShmTransport::drainBacklog(int peer) {
  Peer& p = peers_[peer];
  bool moved = false;
  while (!p.backlog.empty() && write(peer, p.backlog.front())) {
    Outgoing& o = p.backlog.front();
    if (o.type == kEager || (o.type == kChunk && o.op)) o.op->req->complete();  // in the ring (and the pool)
    p.backlog.pop_front();
    moved = true;
    if (p.backlog.empty()) backlogged_.fetch_sub(1, std::memory_order_relaxed);
  }
  return moved;
}

// Wakes the progress threads of peers we wrote to that are asleep. The fence orders our ring
// writes before reading their `sleeping` (a sleeper sets it, then checks its rings).
void ShmTransport::ringDoorbells() {
  bool fenced = false;
  for (auto& p : peers_) {
    if (!p.wrote) continue;
    p.wrote = false;
    if (!fenced) std::atomic_thread_fence(std::memory_order_seq_cst);
    fenced = true;
    if (p.header->sleeping.load(std::memory_order_relaxed)) {
      p.header->doorbell.fetch_add(1, std::memory_order_release);
      ::syscall(SYS_futex, &p.header->doorbell, FUTEX_WAKE, 1, nullptr, nullptr, 0);
    }
  }
}

void ShmTransport::wakeProgress() {
  header()->doorbell.fetch_add(1, std::memory_order_release);
  ::syscall(SYS_futex, &header()->doorbell, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

void ShmTransport::abort(const std::string& reason) {
  std::lock_guard lock(mu_);
  breakLocked(ErrorCode::kAborted, id_.describe() + " aborted: " + reason, true);
}

}  // namespace shm
}  // namespace eccl::transport
