// Messages of a rank to itself, for transports whose data path only reaches peers: a send and a
// receive with equal tags meet here in posting order and the bytes are copied (sizes must
// match, as between ranks). Not thread-safe: the transport calls it under its own lock.
#pragma once

#include <deque>
#include <map>
#include <memory>

#include "transport/request_state.h"

namespace eccl::transport {

class SelfMessages {
 public:
  // Completes `req` with the oldest waiting partner of equal tag, or queues it until one comes.
  // True when it was queued (the transport then installs a canceller that calls withdraw).
  bool post(bool send, Tag tag, const std::shared_ptr<RequestState>& req, uint8_t* data, size_t bytes);
  // Removes a queued request (its cancel); the message it would have matched is not affected.
  void withdraw(bool send, Tag tag, const RequestState* req);
  // Fails every queued request with `code` and "<request> failed: reason".
  void failAll(ErrorCode code, const std::string& reason);
  bool empty() const { return sends_.empty() && recvs_.empty(); }

 private:
  struct Waiting {
    std::shared_ptr<RequestState> req;
    uint8_t* data = nullptr;
    size_t bytes = 0;
  };
  std::map<Tag, std::deque<Waiting>> sends_, recvs_;
};

}  // namespace eccl::transport
