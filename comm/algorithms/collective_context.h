// What a collective algorithm gets: the transport, its place in the group, one tag for all of
// its messages (equal (peer, tag) messages match in posting order, and every rank runs the
// same algorithm, so that is enough), and the deadline it must finish by.
#pragma once

#include <vector>

#include "transport/transport.h"

namespace eccl::algo {

struct CollectiveContext {
  transport::Transport& t;
  int rank;
  int size;
  transport::Tag tag;
  Deadline deadline;

  // Sends `sendBytes` to `to` while receiving `recvBytes` from `from`; waits for both. A side
  // with a negative peer is skipped.
  void sendRecv(int to, const void* send, size_t sendBytes, int from, void* recv, size_t recvBytes) const {
    transport::RequestPtr r, s;
    if (from >= 0) r = t.irecv(from, tag, recv, recvBytes);
    if (to >= 0) s = t.isend(to, tag, send, sendBytes);
    if (r) r->wait(deadline);
    if (s) s->wait(deadline);
  }
  void waitAll(const std::vector<transport::RequestPtr>& reqs) const {
    for (auto& r : reqs) r->wait(deadline);
  }
  int mod(int x) const { return ((x % size) + size) % size; }
};

}  // namespace eccl::algo
