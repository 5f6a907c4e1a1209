// Queue pairs: one RC queue pair per peer, on the transport's completion queue and shared
// receive queue, connected with the numbers both ranks published (verbs_address.h).
#include <algorithm>

#include "base/error.h"
#include "transport/ibverbs/verbs_transport_impl.h"

namespace eccl::transport::verbs {
namespace {

constexpr int kAccess = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;

void modify(ibv_qp* qp, ibv_qp_attr& attr, int mask, const char* to, const std::string& peerName) {
  if (int rc = ibv_modify_qp(qp, &attr, mask); rc != 0)
    throw Error(ErrorCode::kSystem, "queue pair to " + peerName + ": moving it to " + to + ": " + verbsError("ibv_modify_qp", rc));
}

}  // namespace

VerbsPtr<ibv_qp> createQueuePair(const VerbsDevice& device, ibv_cq* cq, ibv_srq* srq, uint32_t maxSendWr) {
  ibv_qp_init_attr init{};
  init.send_cq = cq;
  init.recv_cq = cq;
  init.srq = srq;
  init.qp_type = IBV_QPT_RC;
  init.sq_sig_all = 1;  // every send-side work request completes (slots and operations are freed by them)
  init.cap.max_send_wr = maxSendWr;
  init.cap.max_send_sge = 1;
  VerbsPtr<ibv_qp> qp(ibv_create_qp(device.pd(), &init));
  if (!qp) throw Error(ErrorCode::kSystem, "RDMA device " + device.name() + ": " + verbsError("ibv_create_qp", errno));
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_INIT;
  attr.pkey_index = 0;
  attr.port_num = device.port();
  attr.qp_access_flags = kAccess;
  modify(qp.get(), attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, "INIT", "a peer");
  return qp;
}

uint8_t responderReadDepth(const VerbsDevice& device) {
  return static_cast<uint8_t>(std::clamp(device.attr().max_qp_rd_atom, 1, 16));
}

void connectQueuePair(ibv_qp* qp, const VerbsDevice& device, const VerbsAddress& remote, uint32_t remoteQpn,
                      uint32_t localPsn, const VerbsOptions& opts, const std::string& peerName) {
  if (remote.roce != device.roce())
    throw Error(ErrorCode::kInvalidArgument, peerName + " is on " + (remote.roce ? "RoCE" : "InfiniBand") + " and this rank on " +
                                                 (device.roce() ? "RoCE" : "InfiniBand") + ": no path between them");
  const auto& dev = device.attr();
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTR;
  attr.path_mtu = static_cast<ibv_mtu>(std::min<int>(device.activeMtu(), remote.mtu));
  attr.dest_qp_num = remoteQpn;
  attr.rq_psn = remote.psn & 0xffffff;
  attr.max_dest_rd_atomic = responderReadDepth(device);
  attr.min_rnr_timer = 12;  // (receive buffers are always posted: credits)
  attr.ah_attr.port_num = device.port();
  attr.ah_attr.dlid = remote.lid;
  attr.ah_attr.sl = static_cast<uint8_t>(opts.serviceLevel);
  if (remote.roce || remote.lid == 0) {
    attr.ah_attr.is_global = 1;
    std::memcpy(attr.ah_attr.grh.dgid.raw, remote.gid, 16);
    attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(device.gidIndex());
    attr.ah_attr.grh.hop_limit = 64;
    attr.ah_attr.grh.traffic_class = static_cast<uint8_t>(opts.trafficClass);
  }
  modify(qp, attr, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                       IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER, "RTR", peerName);
  attr = {};
  attr.qp_state = IBV_QPS_RTS;
  attr.timeout = static_cast<uint8_t>(opts.ibTimeout);
  attr.retry_cnt = static_cast<uint8_t>(opts.retryCount);
  // Credits keep a receive buffer posted for every message, so a receiver-not-ready is a bug:
  // a few retries (not 7, which is forever) and the queue pair fails, naming the peer.
  attr.rnr_retry = 3;
  attr.sq_psn = localPsn & 0xffffff;
  attr.max_rd_atomic = static_cast<uint8_t>(std::clamp<int>(std::min<int>(dev.max_qp_init_rd_atom, remote.readDepth), 1, 16));
  modify(qp, attr, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC,
         "RTS", peerName);
}

void errorQueuePair(ibv_qp* qp) {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_ERR;
  ibv_modify_qp(qp, &attr, IBV_QP_STATE);  // (cannot fail in a way that matters: it is being given up)
}

}  // namespace eccl::transport::verbs
