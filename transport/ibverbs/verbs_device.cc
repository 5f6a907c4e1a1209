#include "transport/ibverbs/verbs_device.h"

#include <arpa/inet.h>

#include <vector>

#include "base/error.h"

namespace eccl::transport::verbs {
namespace {

struct DeviceList {
  ibv_device** list = nullptr;
  int count = 0;
  DeviceList() { list = ibv_get_device_list(&count); }
  ~DeviceList() {
    if (list) ibv_free_device_list(list);
  }
  std::string names() const {
    std::string s;
    for (int i = 0; i < count; ++i) s += (s.empty() ? "" : ", ") + std::string(ibv_get_device_name(list[i]));
    return s.empty() ? "none" : s;
  }
};

const char* portStateName(ibv_port_state s) { return ibv_port_state_str(s); }

bool isIpv4Mapped(const ibv_gid& g) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(g.raw, prefix, 12) == 0;
}

bool isLinkLocal(const ibv_gid& g) { return g.raw[0] == 0xfe && (g.raw[1] & 0xc0) == 0x80; }

bool isZero(const ibv_gid& g) {
  for (uint8_t b : g.raw)
    if (b) return false;
  return true;
}

}  // namespace

std::string gidString(const ibv_gid& gid) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, gid.raw, buf, sizeof(buf));
  return buf;
}

VerbsDevice::VerbsDevice(const std::string& hca, int gidIndex, const std::string& localIp) {
  std::string want = hca;
  int wantPort = 0;
  if (auto colon = hca.find(':'); colon != std::string::npos) {
    want = hca.substr(0, colon);
    try {
      wantPort = std::stoi(hca.substr(colon + 1));
    } catch (const std::exception&) {
      wantPort = -1;
    }
    if (wantPort <= 0 || wantPort > 255)
      throw Error(ErrorCode::kInvalidArgument, "ECCL_IB_HCA '" + hca + "': the port after ':' must be a number from 1");
  }
  choosePort(want, wantPort);
  chooseGid(gidIndex, localIp);
  pd_.reset(ibv_alloc_pd(ctx_.get()));
  if (!pd_) throw Error(ErrorCode::kSystem, "RDMA device " + name_ + ": " + verbsError("ibv_alloc_pd", errno));
}

// Opens the named device (or each in turn) and takes the given port, or its first active one.
void VerbsDevice::choosePort(const std::string& want, int wantPort) {
  DeviceList devices;
  if (!devices.list || devices.count == 0)
    throw Error(ErrorCode::kInvalidArgument,
                "no RDMA device found (ibv_get_device_list: " + std::string(devices.list ? "empty" : std::strerror(errno)) +
                    "); is an RDMA driver loaded? For Soft-RoCE: rdma link add rxe0 type rxe netdev <interface>");
  std::string seen;  // what was looked at, for the error
  for (int i = 0; i < devices.count; ++i) {
    const std::string name = ibv_get_device_name(devices.list[i]);
    if (!want.empty() && name != want) continue;
    VerbsPtr<ibv_context> ctx(ibv_open_device(devices.list[i]));
    if (!ctx) {
      seen += (seen.empty() ? "" : "; ") + name + ": " + verbsError("ibv_open_device", errno);
      continue;
    }
    ibv_device_attr attr{};
    if (int rc = ibv_query_device(ctx.get(), &attr); rc != 0) {
      seen += (seen.empty() ? "" : "; ") + name + ": " + verbsError("ibv_query_device", rc);
      continue;
    }
    for (int p = 1; p <= attr.phys_port_cnt; ++p) {
      if (wantPort && p != wantPort) continue;
      ibv_port_attr pa{};
      if (int rc = ibv_query_port(ctx.get(), static_cast<uint8_t>(p), &pa); rc != 0) {
        seen += (seen.empty() ? "" : "; ") + name + ":" + std::to_string(p) + " " + verbsError("ibv_query_port", rc);
        continue;
      }
      if (pa.state != IBV_PORT_ACTIVE) {
        seen += (seen.empty() ? "" : "; ") + name + ":" + std::to_string(p) + " is " + portStateName(pa.state);
        continue;
      }
      ctx_ = std::move(ctx);
      attr_ = attr;
      name_ = name;
      port_ = static_cast<uint8_t>(p);
      linkLayer_ = pa.link_layer;
      lid_ = pa.lid;
      mtu_ = pa.active_mtu;
      maxMsg_ = pa.max_msg_sz ? pa.max_msg_sz : maxMsg_;
      return;
    }
    if (wantPort && wantPort > attr.phys_port_cnt)
      seen += (seen.empty() ? "" : "; ") + name + " has " + std::to_string(attr.phys_port_cnt) + " port(s)";
  }
  if (!want.empty() && seen.empty())
    throw Error(ErrorCode::kInvalidArgument, "RDMA device '" + want + "' (ECCL_IB_HCA) not found; devices here: " + devices.names());
  throw Error(ErrorCode::kInvalidArgument, "no active RDMA port" + (want.empty() ? std::string() : " on '" + want + "'") +
                                               " (" + seen + "); devices here: " + devices.names());
}

void VerbsDevice::chooseGid(int gidIndex, const std::string& localIp) {
  const std::string where = name_ + ":" + std::to_string(port_);
  ibv_port_attr pa{};
  ibv_query_port(ctx_.get(), port_, &pa);
  const int table = pa.gid_tbl_len;
  // Every populated GID of the port with its type.
  struct Entry {
    int index;
    ibv_gid gid;
    bool v2;
  };
  std::vector<Entry> gids;
  for (int i = 0; i < table; ++i) {
    ibv_gid_entry e{};
    if (ibv_query_gid_ex(ctx_.get(), port_, static_cast<uint32_t>(i), &e, 0) != 0) continue;
    ibv_gid g{};
    std::memcpy(g.raw, e.gid.raw, sizeof(g.raw));
    if (isZero(g)) continue;
    gids.push_back({i, g, e.gid_type == IBV_GID_TYPE_ROCE_V2});
  }
  auto listed = [&] {
    std::string s;
    for (auto& e : gids) s += (s.empty() ? "" : ", ") + std::to_string(e.index) + ": " + gidString(e.gid) + (e.v2 ? " (v2)" : "");
    return s.empty() ? std::string("none") : s;
  };
  auto take = [&](const Entry& e, const char* kind) {
    gidIndex_ = e.index;
    gid_ = e.gid;
    gidKind_ = kind;
  };
  if (gidIndex >= 0) {
    for (auto& e : gids)
      if (e.index == gidIndex) return take(e, e.v2 ? "RoCE v2" : (roce() ? "RoCE v1" : "IB"));
    throw Error(ErrorCode::kInvalidArgument, "GID index " + std::to_string(gidIndex) + " (ECCL_IB_GID_INDEX) is not usable on " +
                                                 where + "; its GIDs: " + listed());
  }
  if (!roce()) {  // InfiniBand: routed by LID; GID 0 is the port's own
    if (gids.empty()) throw Error(ErrorCode::kInvalidArgument, "no GID on " + where);
    return take(gids.front(), "IB");
  }
  in_addr ip{};
  const bool haveIp = ::inet_pton(AF_INET, localIp.c_str(), &ip) == 1;
  for (auto& e : gids)  // the one with the side channel's address
    if (e.v2 && haveIp && isIpv4Mapped(e.gid) && std::memcmp(e.gid.raw + 12, &ip, 4) == 0) return take(e, "RoCE v2");
  for (auto& e : gids)
    if (e.v2 && isIpv4Mapped(e.gid)) return take(e, "RoCE v2");
  for (auto& e : gids)  // a routable IPv6 one (a link-local GID only reaches its own subnet)
    if (e.v2 && !isLinkLocal(e.gid)) return take(e, "RoCE v2");
  for (auto& e : gids)
    if (e.v2) return take(e, "RoCE v2");
  if (!gids.empty()) return take(gids.front(), "RoCE v1");
  throw Error(ErrorCode::kInvalidArgument, "no usable GID on " + where + " (is an IP address set on its interface?)");
}

std::string VerbsDevice::describe() const {
  static const int kMtuBytes[] = {0, 256, 512, 1024, 2048, 4096};
  const int mtu = mtu_ >= 1 && mtu_ <= 5 ? kMtuBytes[mtu_] : 0;
  return name_ + ":" + std::to_string(port_) + " gid[" + std::to_string(gidIndex_) + "] " + gidString(gid_) + " (" + gidKind_ +
         (roce() ? "" : ", lid " + std::to_string(lid_)) + "), mtu " + std::to_string(mtu);
}

}  // namespace eccl::transport::verbs
