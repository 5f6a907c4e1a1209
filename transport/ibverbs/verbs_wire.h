// The verbs transport's messages (each SENT into a receive buffer of the peer's shared receive
// queue) and its credit bookkeeping. Pure: no verbs calls, unit-tested alone.
//
// Every message starts with a 64-byte header; an eager message's bytes follow it.
//   kEager      tag, seq; the payload is the whole message
//   kRts        tag, seq; a = bytes, b = send id            (a large message is ready)
//   kCts        a = send id, b = receive id, address, key   (write it here) or a status
//   kFin        a = receive id                              (the writes have landed) or kCancelled
//   kCancel     a = send id, b = receive id                 (the receiver withdraws its CTS)
//   kCancelAck  a = receive id                              (no write for it follows)
// `credits` in every header: how many of the addressee's messages the sender has taken out of
// its receive buffers so far (cumulative), so returning credits usually costs nothing extra.
#pragma once

#include <cstddef>
#include <cstdint>

namespace eccl::transport::verbs {

enum class MsgType : uint8_t { kEager = 1, kRts, kCts, kFin, kCancel, kCancelAck };
// kCts: kOk (write), kMismatch (sizes differ: `address` carries the receive's size),
// kDropped (the receive was cancelled: the send is done), kRefused (the receiver could not
// register its buffer). kFin: kOk, or kCancelled (the sender cancelled; the data is partial).
enum class MsgStatus : uint8_t { kOk = 0, kMismatch, kDropped, kRefused, kCancelled };

struct WireHeader {
  MsgType type = MsgType::kEager;
  MsgStatus status = MsgStatus::kOk;
  uint16_t reserved0 = 0;
  uint32_t key = 0;  // kCts: the receive buffer's remote key
  uint64_t credits = 0;
  uint64_t tag = 0, seq = 0;
  uint64_t a = 0, b = 0;
  uint64_t address = 0;
  uint64_t reserved1 = 0;
};
static_assert(sizeof(WireHeader) == 64);

// Flow control for one peer, in messages (each uses one receive buffer at the receiver). The
// peer keeps `sendLimit` buffers posted for this rank (its published credit limit); a message may
// go only while fewer than that are unreturned. Eager data leaves `reserve` of them to control
// messages, which a receiver always handles at once — so a peer holding eager data for receives
// not posted yet can still answer rendezvous and cancels. This rank keeps `recvLimit` buffers for
// the peer, which decides when returning credits is worth a write.
class CreditLedger {
 public:
  CreditLedger(uint64_t sendLimit, uint64_t recvLimit, uint64_t reserve)
      : sendLimit_(sendLimit), recvLimit_(recvLimit), reserve_(reserve) {}

  // --- this rank's messages to the peer
  bool canSend(bool control) const {
    const uint64_t limit = control || reserve_ >= sendLimit_ ? sendLimit_ : sendLimit_ - reserve_;
    return sent_ - returned_ < limit;
  }
  void sent() { ++sent_; }
  // The peer's cumulative count of our messages it has freed (from a header or its credit write).
  void returned(uint64_t cumulative) {
    if (cumulative > returned_ && cumulative <= sent_) returned_ = cumulative;
  }
  uint64_t unreturned() const { return sent_ - returned_; }

  // --- the peer's messages to this rank
  void freed() { ++freed_; }
  // The count to put in a message header (the peer learns of every buffer freed so far).
  uint64_t report() {
    reported_ = freed_;
    return freed_;
  }
  // Whether a credit write is due (no message is going back to carry the count): half the
  // peer's buffers are owed, or — counting the `held` ones this rank keeps for receives not
  // posted yet — the peer may have run out of credits for eager data and wait for these.
  bool owesWrite(uint64_t held) const {
    const uint64_t owed = freed_ - reported_;
    const uint64_t eagerLimit = reserve_ >= recvLimit_ ? recvLimit_ : recvLimit_ - reserve_;
    return owed > 0 && (owed >= (recvLimit_ + 1) / 2 || owed + held >= eagerLimit);
  }
  uint64_t freedCount() const { return freed_; }

 private:
  uint64_t sendLimit_, recvLimit_, reserve_;
  uint64_t sent_ = 0, returned_ = 0;
  uint64_t freed_ = 0, reported_ = 0;
};

}  // namespace eccl::transport::verbs
