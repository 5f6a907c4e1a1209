// Registration and one-sided reads for the socket transport. Sockets need no pinning, so a
// registration is bookkeeping: a key the owner's progress thread looks reads up by. A read is a
// request to the owner, answered with data chunks straight from the region (see socket_wire.h).
#include <cstring>

#include "base/logging.h"
#include "transport/argument_checks.h"
#include "transport/remote_region.h"
#include "transport/socket/socket_transport_impl.h"

namespace eccl::transport::sockets {

MemoryRegion SocketTransport::registerMemory(void* ptr, size_t bytes, MemoryKind kind) {
  if (kind != MemoryKind::kHost)
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": the socket transport registers host memory only");
  if (!ptr && bytes) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": registering " + std::to_string(bytes) + " bytes at a null pointer");
  std::lock_guard lock(mu_);
  const uint64_t key = nextRegionKey_++;
  regions_.emplace(key, Registration{static_cast<uint8_t*>(ptr), bytes, {}});
  return MemoryRegion{ptr, bytes, kind, key};
}

void SocketTransport::deregisterMemory(const MemoryRegion& region) {
  std::lock_guard lock(mu_);
  auto it = regions_.find(region.id);
  if (it == regions_.end())
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": deregistering a region of " + std::to_string(region.bytes) +
                                                 " bytes that is not registered here");
  // Replies under way finish from a private copy: the caller may free the memory now.
  for (auto& weak : it->second.replies)
    if (auto op = weak.lock()) cancelSend(op);
  regions_.erase(it);
}

RegionBlob SocketTransport::exportRegion(const MemoryRegion& region) const {
  std::lock_guard lock(mu_);
  if (!regions_.count(region.id))
    throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": exporting a region that is not registered here");
  return RemoteRegion{TransportKind::kSocket, id_.rank, reinterpret_cast<uintptr_t>(region.ptr), region.bytes, region.id}.encode();
}

RequestPtr SocketTransport::iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes,
                                  const MemoryRegion* local) {
  checkOperation(id_, peer, "read", dst, bytes, local);
  const RemoteRegion r = checkedRemoteRegion(id_, TransportKind::kSocket, peer, remote, offset, bytes);
  std::lock_guard lock(mu_);
  const uint64_t readId = nextReadId_++;
  auto req = std::make_shared<RequestState>(RequestLabel{names_, RequestLabel::Op::kRead, bytes, peer, readId}, progress_);
  if (!admit(*req, peer)) return req;
  if (peer == id_.rank) {  // our own region: a local copy
    auto it = regions_.find(r.key);
    if (it == regions_.end() || offset + bytes > it->second.bytes)
      req->fail(ErrorCode::kRemote, req->what() + ": the region is no longer registered");
    else {
      if (bytes) std::memcpy(dst, it->second.ptr + offset, bytes);
      req->complete();
    }
    return req;
  }
  Peer& p = peers_[peer];
  if (p.departed) {
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: " + peerName(peer) + " left the group");
    return req;
  }
  auto op = std::make_shared<RecvOp>();
  op->req = req;
  op->data = static_cast<uint8_t*>(dst);
  op->bytes = bytes;
  op->key = {readId, 0};
  req->setCanceller([this, peer, readId, weak = std::weak_ptr<RecvOp>(op)] {  // weak: op owns req
    std::lock_guard l(mu_);
    if (auto op = weak.lock()) cancelRead(peer, readId, op);
  });
  p.reads.emplace(readId, op);
  Conn* c = leastLoadedConn(peer);
  if (!c) {
    p.reads.erase(readId);
    req->fail(ErrorCode::kConnectionClosed, req->what() + " failed: no connection to " + peerName(peer));
    return req;
  }
  OutChunk chunk;
  wire::ChunkHeader h{wire::kReadRequest, readId, r.key, bytes, offset, 0};
  wire::encode(h, chunk.header);
  c->sendq.push_back(std::move(chunk));
  if (c->sendq.size() == 1) flush(*c);
  return req;
}

// Owner side: a peer reads [offset, offset + bytes) of region `key`.
void SocketTransport::onReadRequest(int peer, uint64_t readId, uint64_t key, uint64_t offset, uint64_t bytes) {
  auto it = regions_.find(key);
  if (it == regions_.end()) return refuseRead(peer, readId, "region key " + std::to_string(key) + " is not registered (deregistered?)");
  Registration& reg = it->second;
  if (offset > reg.bytes || bytes > reg.bytes - offset)
    return refuseRead(peer, readId, "bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                                        ") are outside the region's " + std::to_string(reg.bytes));
  auto op = std::make_shared<SendOp>();
  op->req = std::make_shared<RequestState>(RequestLabel{names_, RequestLabel::Op::kSend, bytes, peer, readId});
  op->data = reg.ptr + offset;
  op->bytes = bytes;
  std::erase_if(reg.replies, [](const std::weak_ptr<SendOp>& w) { return w.expired(); });
  reg.replies.push_back(op);
  queueData(peer, op, Key{readId, 0}, false, wire::kReadReply);
}

void SocketTransport::refuseRead(int peer, uint64_t readId, const std::string& why) {
  Conn* c = leastLoadedConn(peer);
  if (!c) return;
  OutChunk chunk;
  chunk.control.assign(why.begin(), why.begin() + std::min<size_t>(why.size(), wire::kMaxAbortReason));
  chunk.len = static_cast<uint32_t>(chunk.control.size());
  wire::encode(wire::ChunkHeader{wire::kReadRefused, readId, 0, chunk.len, 0, chunk.len}, chunk.header);
  c->sendq.push_back(std::move(chunk));
  if (c->sendq.size() == 1) flush(*c);
}

void SocketTransport::cancelRead(int peer, uint64_t readId, const std::shared_ptr<RecvOp>& op) {
  if (op->req->test()) return;
  peers_[peer].reads.erase(readId);  // later reply chunks are dropped
  for (Conn* c : peers_[peer].conns)
    if (c->inPayload && c->target == op) {
      c->sink = Conn::Sink::kDiscard;
      c->target = nullptr;
    }
}

}  // namespace eccl::transport::sockets
