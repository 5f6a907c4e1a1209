// One libfabric reliable-datagram endpoint (FI_EP_RDM, tagged messages and RMA reads) of one
// provider, with its fabric, domain, completion queue and address vector. A transport holds one
// per provider it uses (shared memory inside a host, a network provider across hosts).
//
// Provider names: "shm", "tcp" (= "tcp;ofi_rxm"), or any libfabric provider string that offers
// FI_EP_RDM with FI_TAGGED ("verbs;ofi_rxm", "efa"). Not thread-safe: the transport calls it
// under its lock. A shm endpoint's libfabric objects may outlive it, parked in the process's
// ShmEndpointKeeper while a peer in this process still refers to its region.
#pragma once

#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/libfabric/ofi_handles.h"

namespace eccl::transport::ofi {

// "tcp" → "tcp;ofi_rxm"; other names unchanged.
std::string canonicalProvider(const std::string& name);

class Endpoint {
 public:
  // `host`: the local address network providers bind to (ignored by shm). Throws Error naming
  // the provider and, when it is not available, the providers libfabric offers here.
  Endpoint(const std::string& provider, const std::string& host);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const std::string& provider() const { return provider_; }
  std::vector<uint8_t> name() const;                        // this endpoint's address (fi_getname)
  // Into the address vector. Throws if it fails, or if the peer is a shm endpoint of this
  // process that is closed already.
  fi_addr_t insert(const std::vector<uint8_t>& peerName);
  fid_ep* ep() const { return h_->ep.get(); }
  fid_cq* cq() const { return h_->cq.get(); }
  fid_domain* domain() const { return h_->domain.get(); }

  // What the provider asks of memory registration (fi_mr(3)).
  bool needsLocalRegistration() const { return mrMode_ & FI_MR_LOCAL; }
  bool virtualAddressing() const { return mrMode_ & FI_MR_VIRT_ADDR; }
  bool providerKeys() const { return mrMode_ & FI_MR_PROV_KEY; }
  bool bindRegionsToEndpoint() const { return mrMode_ & FI_MR_ENDPOINT; }
  size_t maxMessageBytes() const { return maxMsg_; }
  // Sends this small are copied out at once (fi_tinject) and generate no completion.
  size_t injectBytes() const { return inject_; }
  size_t keyBytes() const { return keyBytes_; }  // how wide a requested key may be
  // Closes the endpoint alone (the provider lets go of every posted operation and buffer), so
  // registrations can be closed before the domain. Not shm's: its endpoint owns the region that
  // peers in this process may still point into, and closes with the rest (see the keeper).
  void closeEndpoint();

 private:
  std::string provider_;
  InfoPtr info_;
  int mrMode_ = 0;
  size_t maxMsg_ = 0, inject_ = 0, keyBytes_ = 8;
  struct Handles {  // in opening order: closed in reverse
    FidPtr<fid_fabric> fabric;
    FidPtr<fid_domain> domain;
    FidPtr<fid_cq> cq;
    FidPtr<fid_av> av;
    FidPtr<fid_ep> ep;
  };
  std::shared_ptr<Handles> h_ = std::make_shared<Handles>();
  std::string shmName_;  // a shm endpoint's name, as the keeper knows it
};

}  // namespace eccl::transport::ofi
