#include "transport/routed/routed_transport.h"

#include <array>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/logging.h"
#include "base/thread_name.h"
#include "transport/blob_codec.h"
#include "transport/host_identity.h"

namespace eccl::transport {
namespace {

constexpr uint32_t kAddressMagic = 0x54524345;  // "ECRT"
constexpr uint32_t kRegionMagic = 0x52524345;   // "ECRR"
constexpr uint32_t kVersion = 1;
enum Route : int { kShm = 0, kSocket = 1, kRoutes = 2 };
const char* const kRouteNames[kRoutes] = {"shm", "socket"};

// Why shared memory cannot work here, if it cannot (then only sockets are offered).
std::optional<std::string> shmUnavailable() {
  int scope = 0;
  if (std::ifstream f("/proc/sys/kernel/yama/ptrace_scope"); f >> scope && scope >= 1)
    return "kernel.yama.ptrace_scope is " + std::to_string(scope) + " (cross-memory attach between ranks needs 0)";
  return std::nullopt;
}

class RoutedTransport final : public Transport {
 public:
  RoutedTransport(GroupIdentity id, RoutedOptions o) : id_(std::move(id)), hostId_(o.shm.hostId.empty() ? localHostId() : o.shm.hostId) {
    o.socket.host = o.shm.host = o.host;
    o.shm.hostId = hostId_;
    if (auto why = shmUnavailable()) {
      logger().info("{}: shared memory is off, sockets carry every pair: {}", id_.describe(), *why);
    } else {
      try {
        subs_[kShm] = createShmTransport(id_, o.shm);
      } catch (const Error& e) {
        logger().info("{}: shared memory is off, sockets carry every pair: {}", id_.describe(), e.what());
      }
    }
    subs_[kSocket] = createSocketTransport(id_, o.socket);
    for (int k = 0; k < kRoutes; ++k)
      if (subs_[k]) subs_[k]->onBreak([this, k](ErrorCode code, const std::string& reason) { relayBreak(k, code, reason); });
    relay_ = std::thread([this] {
      nameThisThread("eccl-route");
      relayLoop();
    });
  }

  ~RoutedTransport() override {
    {
      std::lock_guard lock(relayMu_);
      closing_ = true;  // breaks from here on are the teardown's own
    }
    relayCv_.notify_all();
    relay_.join();
    for (auto& s : subs_) s.reset();
  }

  const GroupIdentity& identity() const override { return id_; }

  AddressBlob address() const override {
    BlobWriter w;
    w.put(kAddressMagic).put(kVersion).str(hostId_);
    for (int k = 0; k < kRoutes; ++k) w.bytes(subs_[k] ? subs_[k]->address() : AddressBlob{});
    return w.take();
  }

  using Transport::connect;
  void connect(const std::vector<AddressBlob>& addresses, Deadline deadline, const GiveUpCheck& giveUp) override {
    if (static_cast<int>(addresses.size()) != id_.size)
      throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": connect needs " + std::to_string(id_.size) + " addresses, got " +
                                                   std::to_string(addresses.size()));
    std::vector<AddressBlob> per[kRoutes];
    for (auto& v : per) v.resize(id_.size);
    routes_.assign(id_.size, kSocket);
    for (int r = 0; r < id_.size; ++r) {
      BlobReader rd(addresses[r], id_.describe() + ": rank " + std::to_string(r), "an address");
      if (rd.get<uint32_t>() != kAddressMagic)
        throw Error(ErrorCode::kProtocol, id_.describe() + ": rank " + std::to_string(r) +
                                              " published an address that is not ECCL_TRANSPORT=auto's (does every rank use the same ECCL_TRANSPORT?)");
      if (auto v = rd.get<uint32_t>(); v != kVersion) rd.fail("of version " + std::to_string(v) + ", expected " + std::to_string(kVersion));
      const std::string host = rd.str();
      AddressBlob sub[kRoutes];
      for (auto& b : sub) b = rd.bytes(1 << 20);
      const bool shm = subs_[kShm] && !sub[kShm].empty() && host == hostId_;
      routes_[r] = r == id_.rank ? (subs_[kShm] ? kShm : kSocket) : shm ? kShm : kSocket;
      if (r == id_.rank) {
        for (int k = 0; k < kRoutes; ++k) per[k][r] = sub[k];
      } else {
        per[routes_[r]][r] = sub[routes_[r]];
      }
    }
    // Same order on every rank (shared memory among each host's ranks, then sockets), so no
    // rank waits in one transport's connect for a peer that is in the other's.
    for (int k = 0; k < kRoutes; ++k)
      if (subs_[k]) subs_[k]->connect(per[k], deadline, giveUp);
    std::string how;
    for (int r = 0; r < id_.size; ++r)
      if (r != id_.rank) how += (how.empty() ? "" : ", ") + std::to_string(r) + ":" + kRouteNames[routes_[r]];
    logger().debug("{}: connected ({})", id_.describe(), how);
  }

  RequestPtr isend(int peer, Tag tag, const void* data, size_t bytes, const MemoryRegion* region) override {
    Transport& t = route(peer, "send");
    return t.isend(peer, tag, data, bytes, subRegion(region, routes_[peer]));
  }
  using Transport::isendAndCopy;
  RequestPtr isendAndCopy(int peer, Tag tag, const void* data, size_t bytes, void* copyTo, const MemoryRegion* region) override {
    Transport& t = route(peer, "send");
    return t.isendAndCopy(peer, tag, data, bytes, copyTo, subRegion(region, routes_[peer]));
  }
  RequestPtr irecv(int peer, Tag tag, void* data, size_t bytes, const MemoryRegion* region) override {
    Transport& t = route(peer, "receive");
    return t.irecv(peer, tag, data, bytes, subRegion(region, routes_[peer]));
  }

  MemoryRegion registerMemory(void* ptr, size_t bytes, MemoryKind kind) override {
    std::array<MemoryRegion, kRoutes> regs{};
    try {
      for (int k = 0; k < kRoutes; ++k)
        if (subs_[k]) regs[k] = subs_[k]->registerMemory(ptr, bytes, kind);
    } catch (...) {
      for (int k = 0; k < kRoutes; ++k)
        if (regs[k].id) subs_[k]->deregisterMemory(regs[k]);
      throw;
    }
    std::lock_guard lock(regionsMu_);
    const MemoryRegion out{ptr, bytes, kind, nextRegionId_++};
    regions_.emplace(out.id, regs);
    return out;
  }

  void deregisterMemory(const MemoryRegion& region) override {
    std::array<MemoryRegion, kRoutes> regs;
    {
      std::lock_guard lock(regionsMu_);
      auto it = regions_.find(region.id);
      if (it == regions_.end())
        throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": deregistering a region of " + std::to_string(region.bytes) +
                                                     " bytes that is not registered here");
      regs = it->second;
      regions_.erase(it);
    }
    for (int k = 0; k < kRoutes; ++k)
      if (regs[k].id) subs_[k]->deregisterMemory(regs[k]);
  }

  RegionBlob exportRegion(const MemoryRegion& region) const override {
    std::array<MemoryRegion, kRoutes> regs;
    {
      std::lock_guard lock(regionsMu_);
      auto it = regions_.find(region.id);
      if (it == regions_.end()) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": exporting a region that is not registered here");
      regs = it->second;
    }
    BlobWriter w;
    w.put(kRegionMagic);
    for (int k = 0; k < kRoutes; ++k) w.bytes(regs[k].id ? subs_[k]->exportRegion(regs[k]) : RegionBlob{});
    return w.take();
  }

  RequestPtr iread(int peer, const RegionBlob& remote, size_t offset, void* dst, size_t bytes, const MemoryRegion* local) override {
    Transport& t = route(peer, "read");
    const std::string whose = id_.describe() + ": read of " + std::to_string(bytes) + " bytes from rank " + std::to_string(peer) + ":";
    BlobReader rd(remote, whose, "a region blob");
    if (remote.size() < 4 || rd.get<uint32_t>() != kRegionMagic)
      throw Error(ErrorCode::kInvalidArgument, whose + " the blob (" + std::to_string(remote.size()) + " bytes) is not a region exported by ECCL_TRANSPORT=auto");
    RegionBlob sub[kRoutes];
    try {
      for (auto& b : sub) b = rd.bytes(4096);
    } catch (const Error& e) {
      throw Error(ErrorCode::kInvalidArgument, e.what());
    }
    return t.iread(peer, sub[routes_[peer]], offset, dst, bytes, subRegion(local, routes_[peer]));
  }

  void abort(const std::string& reason) override {
    for (auto& s : subs_)
      if (s) s->abort(reason);
  }

  // The first break, whichever transport it hit: the other one's is our relay of it (an abort).
  std::optional<std::string> asyncError() const override {
    std::lock_guard lock(firstBreakMu_);
    return firstBreak_ ? std::optional<std::string>(firstBreak_->second) : std::nullopt;
  }
  std::optional<ErrorCode> asyncErrorCode() const override {
    std::lock_guard lock(firstBreakMu_);
    return firstBreak_ ? std::optional<ErrorCode>(firstBreak_->first) : std::nullopt;
  }

  std::string peerAddress(int peer) const override {
    if (peer < 0 || peer >= id_.size) return "?";
    if (routes_.empty()) return subs_[kSocket]->peerAddress(peer);
    return subs_[routes_[peer]]->peerAddress(peer);
  }

 private:
  Transport& route(int peer, const char* op) const {
    if (peer < 0 || peer >= id_.size)
      throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": " + op + " with rank " + std::to_string(peer) + ", outside a group of " +
                                                   std::to_string(id_.size));
    if (routes_.empty()) throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": " + op + " before connect() completed");
    return *subs_[routes_[peer]];
  }

  // The registration of `region` with transport k (null stays null; an unknown one is an error).
  const MemoryRegion* subRegion(const MemoryRegion* region, int k) const {
    if (!region) return nullptr;
    std::lock_guard lock(regionsMu_);
    auto it = regions_.find(region->id);
    if (it == regions_.end())
      throw Error(ErrorCode::kInvalidArgument, id_.describe() + ": a region of " + std::to_string(region->bytes) +
                                                   " bytes that is not registered with this transport");
    return &it->second[k];  // stable: map nodes do not move; deregistering it meanwhile is the caller's error
  }

  // Runs under the broken transport's lock: only hand the news to the relay thread.
  void relayBreak(int from, ErrorCode code, const std::string& reason) {
    {
      std::lock_guard lock(firstBreakMu_);
      if (!firstBreak_) firstBreak_.emplace(code, reason);
    }
    std::lock_guard lock(relayMu_);
    if (closing_) return;
    breaks_.push_back({from, reason});
    relayCv_.notify_all();
  }

  void relayLoop() {
    std::unique_lock lock(relayMu_);
    for (;;) {
      relayCv_.wait(lock, [&] { return closing_ || !breaks_.empty(); });
      if (closing_) return;
      auto [from, reason] = breaks_.front();
      breaks_.pop_front();
      lock.unlock();
      for (int k = 0; k < kRoutes; ++k)
        if (k != from && subs_[k]) subs_[k]->abort(std::string("its ") + kRouteNames[from] + " transport broke: " + reason);
      lock.lock();
    }
  }

  GroupIdentity id_;
  std::string hostId_;
  std::unique_ptr<Transport> subs_[kRoutes];
  std::vector<int> routes_;  // per peer, set by connect()
  mutable std::mutex regionsMu_;
  std::map<uint64_t, std::array<MemoryRegion, kRoutes>> regions_;
  uint64_t nextRegionId_ = 1;
  std::mutex relayMu_;
  std::condition_variable relayCv_;
  std::deque<std::pair<int, std::string>> breaks_;
  bool closing_ = false;
  std::thread relay_;
  mutable std::mutex firstBreakMu_;
  std::optional<std::pair<ErrorCode, std::string>> firstBreak_;
};

}  // namespace

std::unique_ptr<Transport> createRoutedTransport(GroupIdentity identity, RoutedOptions options) {
  if (options.host.empty()) throw Error(ErrorCode::kInvalidArgument, identity.describe() + ": no address to listen on");
  return std::make_unique<RoutedTransport>(std::move(identity), std::move(options));
}

}  // namespace eccl::transport
