#include "transport/self_messages.h"

#include <algorithm>

namespace eccl::transport {

bool SelfMessages::post(bool send, Tag tag, const std::shared_ptr<RequestState>& req, uint8_t* data, size_t bytes) {
  auto& partners = send ? recvs_ : sends_;
  auto it = partners.find(tag);
  if (it == partners.end() || it->second.empty()) {
    (send ? sends_ : recvs_)[tag].push_back(Waiting{req, data, bytes});
    return true;
  }
  Waiting other = std::move(it->second.front());
  it->second.pop_front();
  if (it->second.empty()) partners.erase(it);
  const Waiting mine{req, data, bytes};
  const Waiting& s = send ? mine : other;
  const Waiting& r = send ? other : mine;
  completeLocalMatch(*s.req, s.data, s.bytes, *r.req, r.data, r.bytes);
  return false;
}

void SelfMessages::withdraw(bool send, Tag tag, const RequestState* req) {
  auto& queues = send ? sends_ : recvs_;
  auto it = queues.find(tag);
  if (it == queues.end()) return;
  std::erase_if(it->second, [&](const Waiting& w) { return w.req.get() == req; });
  if (it->second.empty()) queues.erase(it);
}

void SelfMessages::failAll(ErrorCode code, const std::string& reason) {
  for (auto* q : {&sends_, &recvs_})
    for (auto& [tag, waiting] : *q)
      for (auto& w : waiting) w.req->fail(code, w.req->what() + " failed: " + reason);
  sends_.clear();
  recvs_.clear();
}

}  // namespace eccl::transport
