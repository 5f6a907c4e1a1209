// One libfabric reliable-datagram endpoint (FI_EP_RDM, tagged messages and RMA reads) of one
// provider, with its fabric, domain, completion queue and address vector. A transport holds one
// per provider it uses (shared memory inside a host, a network provider across hosts).
//
// Provider names: "shm", "tcp" (= "tcp;ofi_rxm"), or any libfabric provider string that offers
// FI_EP_RDM with FI_TAGGED ("verbs;ofi_rxm", "efa"). Not thread-safe: the transport calls it
// under its lock.
#pragma once

#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include <cstdint>
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

  const std::string& provider() const { return provider_; }
  std::vector<uint8_t> name() const;                        // this endpoint's address (fi_getname)
  fi_addr_t insert(const std::vector<uint8_t>& peerName);  // into the address vector; throws
  fid_ep* ep() const { return ep_.get(); }
  fid_cq* cq() const { return cq_.get(); }
  fid_domain* domain() const { return domain_.get(); }

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
  // registrations can be closed before the domain.
  void closeEndpoint() { ep_.reset(); }

 private:
  std::string provider_;
  InfoPtr info_;
  int mrMode_ = 0;
  size_t maxMsg_ = 0, inject_ = 0, keyBytes_ = 8;
  FidPtr<fid_fabric> fabric_;
  FidPtr<fid_domain> domain_;
  FidPtr<fid_cq> cq_;
  FidPtr<fid_av> av_;
  FidPtr<fid_ep> ep_;
};

}  // namespace eccl::transport::ofi
