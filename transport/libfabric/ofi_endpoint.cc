#include "transport/libfabric/ofi_endpoint.h"

#include <rdma/fi_cm.h>
#include <rdma/fi_tagged.h>

#include <algorithm>
#include <new>
#include <set>

#include "base/error.h"
#include "transport/libfabric/shm_endpoint_keeper.h"
#include "transport/socket/address.h"

namespace eccl::transport::ofi {
namespace {

constexpr size_t kNetworkQueueDepth = 256;
constexpr uint64_t kCaps = FI_TAGGED | FI_DIRECTED_RECV | FI_RMA | FI_READ | FI_REMOTE_READ;

// What we ask of every provider; mr_mode lists the modes we can honour (fi_mr(3)).
InfoPtr hints(const std::string& provider) {
  InfoPtr h(fi_allocinfo());
  if (!h) throw Error(ErrorCode::kSystem, "fi_allocinfo failed");
  h->caps = kCaps;
  h->mode = FI_CONTEXT | FI_CONTEXT2;
  h->ep_attr->type = FI_EP_RDM;
  h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  h->domain_attr->threading = FI_THREAD_DOMAIN;  // the transport serialises every call
  h->domain_attr->data_progress = FI_PROGRESS_MANUAL;
  h->tx_attr->msg_order = FI_ORDER_SAS;  // equal (peer, tag) messages match in posting order
  if (!provider.empty()) h->fabric_attr->prov_name = strdup(provider.c_str());
  return h;
}

// The providers that offer what eccl needs here, for error messages.
std::string offeredProviders() {
  InfoPtr h = hints("");
  fi_info* list = nullptr;
  if (fi_getinfo(kApiVersion, nullptr, nullptr, 0, h.get(), &list) != 0 || !list) return "none";
  InfoPtr all(list);
  std::set<std::string> names;
  for (fi_info* i = list; i; i = i->next) names.insert(i->fabric_attr->prov_name);
  std::string out;
  for (auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check(long ret, const char* call, const std::string& provider) {
  if (ret != 0) throw Error(ErrorCode::kSystem, "libfabric provider '" + provider + "': " + fiError(call, ret));
}

}  // namespace

std::string canonicalProvider(const std::string& name) { return name == "tcp" ? "tcp;ofi_rxm" : name; }

Endpoint::Endpoint(const std::string& provider, const std::string& host) : provider_(canonicalProvider(provider)) {
  InfoPtr h = hints(provider_);
  // Network providers bind to the address peers reach this rank by; shm names itself.
  const bool network = provider_ != "shm";
  std::string node;
  if (network && !host.empty()) node = SocketAddress::resolve(host, 0).host();
  fi_info* found = nullptr;
  int ret = fi_getinfo(kApiVersion, node.empty() ? nullptr : node.c_str(), nullptr, node.empty() ? 0 : FI_SOURCE, h.get(), &found);
  if (ret != 0 || !found)
    throw Error(ErrorCode::kInvalidArgument,
                "libfabric provider '" + provider_ + "' is not available here" + (node.empty() ? "" : " on " + node) + " (" +
                    fiError("fi_getinfo", ret) + "); providers offering reliable tagged messages and reads: " + offeredProviders());
  info_.reset(found);
  // ofi_rxm sizes its buffer pools by the queue depths (2048 × 16 KiB each way by default, ~80 MiB
  // an endpoint); a group needs far fewer in flight per endpoint, and more wait in our backlog.
  if (network) {
    info_->tx_attr->size = std::min<size_t>(info_->tx_attr->size, kNetworkQueueDepth);
    info_->rx_attr->size = std::min<size_t>(info_->rx_attr->size, kNetworkQueueDepth);
  }
  mrMode_ = info_->domain_attr->mr_mode;
  maxMsg_ = info_->ep_attr->max_msg_size;
  inject_ = info_->tx_attr->inject_size;
  if (info_->domain_attr->mr_key_size) keyBytes_ = std::min<size_t>(8, info_->domain_attr->mr_key_size);
  fid_fabric* fabric = nullptr;
  check(fi_fabric(info_->fabric_attr, &fabric, nullptr), "fi_fabric", provider_);
  h_->fabric.reset(fabric);
  fid_domain* domain = nullptr;
  check(fi_domain(h_->fabric.get(), info_.get(), &domain, nullptr), "fi_domain", provider_);
  h_->domain.reset(domain);
  fi_cq_attr cqAttr{};
  cqAttr.format = FI_CQ_FORMAT_TAGGED;
  cqAttr.wait_obj = FI_WAIT_NONE;  // polled: shm has no wait object, and callers poll anyway
  cqAttr.size = 0;
  fid_cq* cq = nullptr;
  check(fi_cq_open(h_->domain.get(), &cqAttr, &cq, nullptr), "fi_cq_open", provider_);
  h_->cq.reset(cq);
  fi_av_attr avAttr{};
  avAttr.type = FI_AV_TABLE;
  fid_av* av = nullptr;
  check(fi_av_open(h_->domain.get(), &avAttr, &av, nullptr), "fi_av_open", provider_);
  h_->av.reset(av);
  // libfabric's shm provider names its region after the pid in /dev/shm, and a killed process
  // leaves its region behind: a later process with the same pid finds the name taken (EBUSY).
  // Each new endpoint of the process takes the next name.
  for (int attempt = 0;; ++attempt) {
    fid_ep* ep = nullptr;
    check(fi_endpoint(h_->domain.get(), info_.get(), &ep, nullptr), "fi_endpoint", provider_);
    h_->ep.reset(ep);
    check(fi_ep_bind(h_->ep.get(), &h_->cq->fid, FI_TRANSMIT | FI_RECV), "fi_ep_bind(cq)", provider_);
    check(fi_ep_bind(h_->ep.get(), &h_->av->fid, 0), "fi_ep_bind(av)", provider_);
    const int ret = fi_enable(h_->ep.get());
    if (ret == -FI_EBUSY && !network && attempt < 64) {
      h_->ep.reset();
      continue;
    }
    check(ret, "fi_enable", provider_);
    break;
  }
  if (!network) {
    const std::vector<uint8_t> n = name();
    shmName_.assign(n.begin(), n.end());
    ShmEndpointKeeper::process().opened(shmName_);
  }
}

Endpoint::~Endpoint() {
  if (shmName_.empty()) return;  // (the handles close with the members)
  try {
    ShmEndpointKeeper::process().release(shmName_, std::move(h_));
  } catch (const std::bad_alloc&) {
    // (out of memory: the keeper closed them at once; nothing better is left to do)
  }
}

void Endpoint::closeEndpoint() {
  if (shmName_.empty()) h_->ep.reset();
}

std::vector<uint8_t> Endpoint::name() const {
  std::vector<uint8_t> out(256);
  size_t len = out.size();
  int ret = fi_getname(&h_->ep->fid, out.data(), &len);
  if (ret == -FI_ETOOSMALL) {
    out.resize(len);
    ret = fi_getname(&h_->ep->fid, out.data(), &len);
  }
  check(ret, "fi_getname", provider_);
  out.resize(len);
  return out;
}

fi_addr_t Endpoint::insert(const std::vector<uint8_t>& peerName) {
  if (!shmName_.empty() && !ShmEndpointKeeper::process().refer(shmName_, std::string(peerName.begin(), peerName.end())))
    throw Error(ErrorCode::kConnectFailed, "libfabric provider 'shm': the peer's endpoint, in this process, is closed already");
  fi_addr_t addr = FI_ADDR_UNSPEC;
  int n = fi_av_insert(h_->av.get(), peerName.data(), 1, &addr, 0, nullptr);
  if (n != 1) throw Error(ErrorCode::kConnectFailed, "libfabric provider '" + provider_ + "': fi_av_insert of a peer's address failed (" + std::to_string(n) + ")");
  return addr;
}

}  // namespace eccl::transport::ofi
