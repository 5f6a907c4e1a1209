// Matching of incoming messages to posted receives, shared by the transports that match
// themselves (sockets today, verbs and shared memory next; libfabric matches in the provider).
//
// Order: messages with equal (peer, tag) match receives in posting order. Each send and each
// receive is numbered per (peer, tag), and message n of a tag matches receive n of that tag, so
// chunks of different messages may arrive interleaved or out of order and still land right.
//
// Unexpected messages (arrived before their receive) are held in buffers counted against one
// budget for the whole transport; when it is spent, reserve() says no and the transport stops
// reading from that peer until a receive is posted or space is freed (back-pressure, never
// loss). A zero-byte message always fits.
//
// Pure bookkeeping: no I/O and no locking (the transport calls it under its own lock).
// `Receive` is the transport's handle for a posted receive (e.g. a shared_ptr); a
// default-constructed Receive means "none".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "transport/transport.h"

namespace eccl::transport {

struct MessageKey {
  Tag tag = 0;
  uint64_t seq = 0;
  auto operator<=>(const MessageKey&) const = default;
};

template <class Receive>
class TagMatcher {
 public:
  // A message that arrived (or is arriving) before its receive.
  struct Unexpected {
    std::vector<uint8_t> data;  // the whole message, filled as its bytes arrive
    size_t received = 0;
    Receive waiter{};     // posted while the bytes were still arriving: gets them when complete
    bool orphan = false;  // its receive was cancelled: dropped once complete
    bool complete() const { return received == data.size(); }
  };

  TagMatcher(int peers, size_t budgetBytes) : peers_(static_cast<size_t>(peers)), budget_(budgetBytes) { spare_.reserve(kSpareNodes); }

  // --- numbering
  MessageKey numberSend(int peer, Tag tag) { return {tag, at(peer).sendSeq[tag]++}; }
  MessageKey numberReceive(int peer, Tag tag) { return {tag, at(peer).recvSeq[tag]++}; }
  // Takes back the number numberSend just gave (the send was not posted after all).
  void unnumberSend(int peer, Tag tag) { --at(peer).sendSeq[tag]; }
  // Whether the receive for `key` has been numbered already (it may be gone since: done or cancelled).
  bool receiveNumbered(int peer, MessageKey key) const { return numbered(at(peer).recvSeq, key); }
  bool sendNumbered(int peer, MessageKey key) const { return numbered(at(peer).sendSeq, key); }

  // --- posted receives
  void post(int peer, MessageKey key, Receive r) {
    auto& m = at(peer).posted;
    if (spare_.empty()) {
      m.insert_or_assign(key, std::move(r));
      return;
    }
    auto node = std::move(spare_.back());
    spare_.pop_back();
    node.key() = key;
    node.mapped() = std::move(r);
    auto res = m.insert(std::move(node));
    if (!res.inserted) {  // (posted already: replaced, as insert_or_assign would)
      res.position->second = std::move(res.node.mapped());
      spare_.push_back(std::move(res.node));
    }
  }
  // The posted receive for `key`, or null. Stays posted.
  Receive* posted(int peer, MessageKey key) {
    auto& m = at(peer).posted;
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  // Removes and returns the posted receive for `key` (a default Receive when there is none).
  Receive unpost(int peer, MessageKey key) {
    auto& m = at(peer).posted;
    auto it = m.find(key);
    if (it == m.end()) return Receive{};
    auto node = m.extract(it);
    Receive r = std::exchange(node.mapped(), Receive{});
    if (spare_.size() < kSpareNodes) spare_.push_back(std::move(node));
    return r;
  }
  bool anyPosted(int peer) const { return !at(peer).posted.empty(); }

  // --- unexpected messages
  Unexpected* unexpected(int peer, MessageKey key) {
    auto& m = at(peer).unexpected;
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  }
  // The unexpected message for `key`, made with room for `total` bytes if it is new; null when
  // it is new and the budget cannot hold it.
  Unexpected* reserve(int peer, MessageKey key, size_t total) {
    if (Unexpected* u = unexpected(peer, key)) return u;
    if (total > 0 && (total > budget_ || held_ > budget_ - total)) return nullptr;
    Unexpected& u = at(peer).unexpected[key];
    u.data.resize(total);
    held_ += total;
    return &u;
  }
  // Drops an unexpected message and frees its space.
  void release(int peer, MessageKey key) {
    auto& m = at(peer).unexpected;
    auto it = m.find(key);
    if (it == m.end()) return;
    held_ -= it->second.data.size();
    m.erase(it);
  }
  size_t heldBytes() const { return held_; }
  size_t budgetBytes() const { return budget_; }

  // --- withdrawing
  // A receive for `key` is cancelled: it is unposted, and an unexpected message for it is
  // dropped (now if complete, else once complete). True when such a message existed.
  bool withdraw(int peer, MessageKey key) {
    unpost(peer, key);
    Unexpected* u = unexpected(peer, key);
    if (!u) return false;
    u->waiter = Receive{};
    u->orphan = true;
    if (u->complete()) release(peer, key);
    return true;
  }
  // Every receive waiting on `peer` (posted, or waiting for an unexpected message to complete),
  // removed from the matcher; for failing them when the peer or the transport is gone.
  // Unexpected data stays (a later receive may still want it).
  std::vector<Receive> takeWaiting(int peer) {
    PeerState& p = at(peer);
    std::vector<Receive> out;
    for (auto& [k, r] : p.posted) out.push_back(std::move(r));
    p.posted.clear();
    for (auto& [k, u] : p.unexpected)
      if (u.waiter) out.push_back(std::exchange(u.waiter, Receive{}));
    return out;
  }

 private:
  using Posted = std::map<MessageKey, Receive>;
  struct PeerState {
    std::unordered_map<Tag, uint64_t> sendSeq, recvSeq;  // next number per tag
    Posted posted;
    std::map<MessageKey, Unexpected> unexpected;
  };
  static bool numbered(const std::unordered_map<Tag, uint64_t>& seqs, MessageKey key) {
    auto it = seqs.find(key.tag);
    return it != seqs.end() && key.seq < it->second;
  }
  PeerState& at(int peer) { return peers_.at(static_cast<size_t>(peer)); }
  const PeerState& at(int peer) const { return peers_.at(static_cast<size_t>(peer)); }

  std::vector<PeerState> peers_;
  // Nodes of receives that were matched, kept for the next posts: a receive then costs no
  // allocation in the matcher (at most kSpareNodes are kept; their Receives are empty).
  static constexpr size_t kSpareNodes = 64;
  std::vector<typename Posted::node_type> spare_;
  size_t budget_;
  size_t held_ = 0;
};

}  // namespace eccl::transport
