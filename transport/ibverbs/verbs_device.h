// One opened RDMA device port for a transport: which device, port and GID it uses and what they
// allow (path MTU, message size, queue depths), with its protection domain.
// Choosing (see verbs_transport.h for the rules): errors name what was found — the devices
// there are, a port's state, the GIDs of the port.
#pragma once

#include <cstdint>
#include <string>

#include "transport/ibverbs/verbs_handles.h"

namespace eccl::transport::verbs {

class VerbsDevice {
 public:
  // `hca`: "name[:port]" or empty (first active port). `gidIndex`: −1 = choose. `localIp`: the
  // IPv4 address the side channel listens on, preferred among RoCE v2 GIDs.
  VerbsDevice(const std::string& hca, int gidIndex, const std::string& localIp);

  ibv_context* context() const { return ctx_.get(); }
  ibv_pd* pd() const { return pd_.get(); }
  const std::string& name() const { return name_; }
  uint8_t port() const { return port_; }
  bool roce() const { return linkLayer_ == IBV_LINK_LAYER_ETHERNET; }
  uint16_t lid() const { return lid_; }
  int gidIndex() const { return gidIndex_; }
  const ibv_gid& gid() const { return gid_; }
  ibv_mtu activeMtu() const { return mtu_; }
  uint32_t maxMessageBytes() const { return maxMsg_; }
  const ibv_device_attr& attr() const { return attr_; }
  // "rxe0:1 gid[1] ::ffff:10.99.0.1 (RoCE v2), mtu 1024"
  std::string describe() const;

 private:
  void choosePort(const std::string& want, int wantPort);
  void chooseGid(int gidIndex, const std::string& localIp);

  VerbsPtr<ibv_context> ctx_;
  VerbsPtr<ibv_pd> pd_;
  std::string name_;
  uint8_t port_ = 1;
  uint8_t linkLayer_ = IBV_LINK_LAYER_INFINIBAND;
  uint16_t lid_ = 0;
  int gidIndex_ = 0;
  std::string gidKind_;
  ibv_gid gid_{};
  ibv_mtu mtu_ = IBV_MTU_1024;
  uint32_t maxMsg_ = 1u << 30;
  ibv_device_attr attr_{};
};

// "::ffff:10.99.0.1" or "fe80::…".
std::string gidString(const ibv_gid& gid);

}  // namespace eccl::transport::verbs
