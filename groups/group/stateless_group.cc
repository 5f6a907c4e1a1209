#include "groups/group/stateless_group.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>

#include "groups/store/prefix_store.h"
#include "groups/store/tcp_store_client.h"
#include "base/env.h"
#include "base/error.h"
#include "base/logging.h"
#include "transport/socket/socket.h"

namespace eccl {
namespace {

std::string interfaceAddress(const std::string& ifname) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) throwSystemError("getifaddrs", errno);
  std::string found;
  for (ifaddrs* i = list; i && found.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || ifname != i->ifa_name || !(i->ifa_flags & IFF_UP)) continue;
    int fam = i->ifa_addr->sa_family;
    if (fam != AF_INET && fam != AF_INET6) continue;
    found = SocketAddress(i->ifa_addr, fam == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)).host();
  }
  ::freeifaddrs(list);
  if (found.empty()) throw Error(ErrorCode::kInvalidArgument, "ECCL_SOCKET_IFNAME=" + ifname + ": no such interface with an address");
  return found;
}

// Ranks that disagree on the group size would wait for ranks that never come (or connect a mesh
// of the wrong shape). The first rank to arrive records its size; a rank that finds a different
// one refuses at once and leaves the reason under "conflict" for the ranks already waiting.
void agreeOnSize(Store& ps, const transport::GroupIdentity& id) {
  const std::string mine = std::to_string(id.size);
  auto r = ps.compareSet("size", {}, asBytes(mine));
  if (r.swapped || toString(r.current) == mine) return;
  const std::string why = id.describe() + ": ranks disagree on the group size: rank " + std::to_string(id.rank) + " says " +
                          mine + ", a rank that arrived earlier says " + toString(r.current);
  ps.set("conflict", asBytes(why));
  throw Error(ErrorCode::kInvalidArgument, why);
}

// Everyone's address, waiting in slices so a size conflict reported meanwhile ends the wait
// soon instead of at the deadline. Slices grow (0.2 s to 2 s): a big group that waits long for
// a slow rank does not poll the store hard.
std::vector<Bytes> awaitAddresses(Store& ps, const std::vector<std::string>& keys, const Deadline& deadline) {
  std::chrono::milliseconds slice(200);
  for (;;) {
    slice = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(2000), slice * 3 / 2);
    slice = std::min<std::chrono::milliseconds>(slice, deadline.remaining());
    try {
      return ps.multiGet(keys, slice);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kTimeout || deadline.expired()) throw;
    }
    if (auto conflict = ps.tryGet("conflict")) throw Error(ErrorCode::kInvalidArgument, toString(*conflict));
  }
}

// One store value per rank: the transport's address blob, then the heartbeat monitor's address.
Bytes encodeAddresses(const transport::AddressBlob& blob, const std::string& monitor) {
  // (Sized once and filled with memcpy: GCC 12 at -O3 warns falsely about inserts here.)
  Bytes out(4 + blob.size() + monitor.size());
  const uint32_t n = static_cast<uint32_t>(blob.size());
  std::memcpy(out.data(), &n, 4);
  if (!blob.empty()) std::memcpy(out.data() + 4, blob.data(), blob.size());
  if (!monitor.empty()) std::memcpy(out.data() + 4 + blob.size(), monitor.data(), monitor.size());
  return out;
}

std::pair<transport::AddressBlob, std::string> decodeAddresses(const Bytes& b, int rank) {
  uint32_t n = 0;
  if (b.size() >= 4) std::memcpy(&n, b.data(), 4);
  if (b.size() < 4 || b.size() - 4 < n)
    throw Error(ErrorCode::kProtocol, "rank " + std::to_string(rank) + " published a malformed address (" +
                                          std::to_string(b.size()) + " bytes): another eccl version?");
  return {transport::AddressBlob(b.begin() + 4, b.begin() + 4 + n), std::string(b.begin() + 4 + n, b.end())};
}

}  // namespace

void callOffGroupBuild(const std::shared_ptr<Store>& store, const std::string& name, uint64_t epoch, const std::string& why) {
  try {
    PrefixStore(store, name + "/" + std::to_string(epoch)).set("conflict", asBytes(why));
  } catch (const Error&) {
  }
}

std::optional<std::string> configuredInterfaceAddress() {
  if (auto ifname = envString("ECCL_SOCKET_IFNAME")) return interfaceAddress(*ifname);
  return std::nullopt;
}

std::string defaultGroupHost(const Store& store) {
  if (auto configured = configuredInterfaceAddress()) return *configured;
  // The interface the store is reached by: peers that reach the store can reach us there.
  std::string where = store.describe();
  auto addr = SocketAddress::parse(where.substr(0, where.find(' ')));
  Fd probe(::socket(addr.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe || ::connect(probe.get(), addr.sockaddrPtr(), addr.length()) != 0)
    throw Error(ErrorCode::kConnectFailed, "cannot find a local address towards the store at " + where);
  return SocketAddress::ofSocket(probe.get()).host();
}

std::unique_ptr<StatelessGroup> StatelessGroup::create(const std::string& storeAddress, const std::string& name, int rank,
                                                       int size, GroupOptions options) {
  // One deadline bounds the whole call: reaching the store must not outlast the group timeout
  // (ECCL_TIMEOUT), though a shorter ECCL_STORE_TIMEOUT still applies to store calls.
  const auto timeout = operationTimeout(options.comm.timeout);
  TcpStoreClientOptions so;
  so.timeout = std::min(timeout, envSeconds("ECCL_STORE_TIMEOUT", timeout));
  return create(std::make_shared<TcpStoreClient>(storeAddress, so), name, rank, size, std::move(options));
}

std::unique_ptr<StatelessGroup> StatelessGroup::create(std::shared_ptr<Store> store, const std::string& name, int rank,
                                                       int size, GroupOptions options) {
  if (name.empty() || name.find('/') != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument, "group name '" + name + "' must be non-empty and contain no '/'");
  if (size <= 0 || rank < 0 || rank >= size) {
    const std::string why = "group '" + name + "': rank " + std::to_string(rank) + " is outside a group of " + std::to_string(size);
    callOffGroupBuild(store, name, options.epoch, why);  // the ranks already waiting learn it now
    throw Error(ErrorCode::kInvalidArgument, why);
  }
  const auto timeout = operationTimeout(options.comm.timeout);
  const Deadline deadline = Deadline::after(options.buildTimeout ? std::min(*options.buildTimeout, timeout) : timeout);
  transport::GroupIdentity id{name, options.epoch, rank, size};
  transport::TransportOptions to = options.transport;
  if (to.host.empty()) to.host = defaultGroupHost(*store);
  auto t = transport::createTransport(id, to);
  auto monitor = std::make_unique<transport::HeartbeatMonitor>(id, to.host, transport::resolveHeartbeatTimeout(options.heartbeat));
  PrefixStore ps(store, name + "/" + std::to_string(options.epoch));
  agreeOnSize(ps, id);
  const std::string mine = "addr/" + std::to_string(rank);
  auto blob = t->address();
  ps.set(mine, encodeAddresses(blob, monitor->address()));
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back("addr/" + std::to_string(r));
  std::vector<transport::AddressBlob> addrs;
  std::vector<std::string> monitors;
  try {
    auto all = awaitAddresses(ps, keys, deadline);
    for (int r = 0; r < size; ++r) {
      auto [a, m] = decodeAddresses(all[r], r);
      addrs.push_back(std::move(a));
      monitors.push_back(std::move(m));
    }
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw;  // a size conflict, already explained
    throw Error(e.code(), id.describe() + ": not every rank published its address: " + e.what());
  }
  // A build called off meanwhile (a recovery abandoned this epoch, a rank refused it) stops
  // waiting for ranks that will never connect — a rank that died after publishing its address —
  // instead of at the deadline. The store is asked at most every 0.5 s, each time waiting 1 ms
  // for the key (an unreachable store holds one look up by the client's grace, not its timeout),
  // and no more once it has failed to answer.
  auto nextLook = Clock::now();
  bool storeAnswers = true;
  GiveUpCheck calledOff = [&]() -> std::optional<std::string> {
    if (!storeAnswers || Clock::now() < nextLook) return std::nullopt;
    nextLook = Clock::now() + Millis(500);
    try {
      return "the build was called off: " + toString(ps.get("conflict", Millis(1)));
    } catch (const Error& e) {
      storeAnswers = e.code() == ErrorCode::kTimeout;  // (not there yet) — else the store is gone: wait on
    }
    return std::nullopt;
  };
  t->connect(addrs, deadline, calledOff);
  // Everyone who needed our address has connected to us by now (or we to them).
  ps.deleteKey(mine);
  if (rank == 0) ps.deleteKey("size");  // every rank checked it before publishing its address
  logger().info("{}: built ({} ranks, listening on {})", id.describe(), size, std::string(blob.begin(), blob.end()));
  CommOptions co = options.comm;
  co.timeout = timeout;
  auto comm = std::make_unique<Communicator>(std::move(t), co);
  Communicator* c = comm.get();
  monitor->connect(monitors, deadline, [c](int failed, const std::string& evidence) { c->peerFailed(failed, evidence); },
                   calledOff);
  comm->attachMonitor(std::move(monitor));
  return std::unique_ptr<StatelessGroup>(new StatelessGroup(name, options.epoch, std::move(store), std::move(comm)));
}

}  // namespace eccl
