// A single-producer single-consumer ring of variable-size records in shared memory: one per
// ordered pair of ranks (the sender writes, the receiver reads), so no lock and no atomic
// read-modify-write is needed — each side only stores its own index.
//
// Layout at `base`: RingIndices (two cache lines: head, written by the producer; tail, written by
// the consumer), then `capacity` bytes of records. Positions grow without wrapping (64-bit) and
// are taken modulo capacity. A record is 64-byte aligned and never wraps: when one does not fit
// before the end, the producer writes a padding record there and starts over at offset 0.
//
// Memory order: the producer fills a record, then publishes it by a release store of head; the
// consumer acquires head, reads records, then frees them by a release store of tail.
//
// Pure logic over memory: unit-tested within one process.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace eccl::transport::shm {

inline constexpr size_t kRecordAlign = 64;

struct alignas(64) RingIndices {
  alignas(64) std::atomic<uint64_t> head{0};  // bytes ever written (producer)
  alignas(64) std::atomic<uint64_t> tail{0};  // bytes ever freed (consumer)
};
static_assert(sizeof(RingIndices) == 128);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

// Every record starts with this; `bytes` is the whole record, padding to alignment included.
struct RecordHeader {
  uint32_t bytes = 0;
  uint16_t type = 0;  // 0 = padding (skipped by the reader); the rest belong to the protocol
  uint16_t flags = 0;
};
inline constexpr uint16_t kPadding = 0;

inline size_t ringBytes(size_t capacity) { return sizeof(RingIndices) + capacity; }

class RingWriter {
 public:
  RingWriter() = default;
  // `capacity`: a power of two, at least twice the largest record.
  RingWriter(void* base, size_t capacity)
      : idx_(static_cast<RingIndices*>(base)), data_(static_cast<uint8_t*>(base) + sizeof(RingIndices)), cap_(capacity),
        head_(idx_->head.load(std::memory_order_relaxed)) {}

  // Room for a record of `bytes` (header included) or null when the ring is too full. The record
  // is invisible to the reader until commit().
  uint8_t* reserve(size_t bytes) {
    const size_t need = align(bytes);
    const size_t at = head_ & (cap_ - 1);
    const size_t toEnd = cap_ - at;
    const size_t total = need <= toEnd ? need : toEnd + need;  // pad to the end, then start over
    if (total > cap_ || head_ + total - tail() > cap_) {
      tailCache_ = idx_->tail.load(std::memory_order_acquire);
      if (total > cap_ || head_ + total - tailCache_ > cap_) return nullptr;
    }
    if (need > toEnd) {
      auto* pad = reinterpret_cast<RecordHeader*>(data_ + at);
      pad->bytes = static_cast<uint32_t>(toEnd);
      pad->type = kPadding;
      head_ += toEnd;
    }
    pending_ = need;
    auto* h = reinterpret_cast<RecordHeader*>(data_ + (head_ & (cap_ - 1)));
    h->bytes = static_cast<uint32_t>(need);
    return reinterpret_cast<uint8_t*>(h);
  }
  // Publishes the reserved record (and any padding before it).
  void commit() {
    head_ += pending_;
    pending_ = 0;
    idx_->head.store(head_, std::memory_order_release);
  }

 private:
  static size_t align(size_t n) { return (n + kRecordAlign - 1) & ~(kRecordAlign - 1); }
  uint64_t tail() const { return tailCache_; }
  RingIndices* idx_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t cap_ = 0;
  uint64_t head_ = 0;
  uint64_t tailCache_ = 0;  // the consumer's tail as last seen: re-read only when the ring looks full
  size_t pending_ = 0;
};

class RingReader {
 public:
  RingReader() = default;
  RingReader(void* base, size_t capacity)
      : idx_(static_cast<RingIndices*>(base)), data_(static_cast<uint8_t*>(base) + sizeof(RingIndices)), cap_(capacity),
        tail_(idx_->tail.load(std::memory_order_relaxed)) {}

  // The oldest unread record (padding skipped), or null when there is none — or when the
  // producer wrote a record size that cannot be (see corrupt()). Stays valid until pop() (the
  // producer does not reuse its bytes before then).
  const uint8_t* front() {
    for (;;) {
      if (tail_ == headCache_) {
        headCache_ = idx_->head.load(std::memory_order_acquire);
        if (tail_ == headCache_) return nullptr;
        if (headCache_ - tail_ > cap_) {  // behind our tail, or more than a ring ahead
          corrupt_ = true;
          return nullptr;
        }
      }
      auto* h = reinterpret_cast<const RecordHeader*>(data_ + (tail_ & (cap_ - 1)));
      const size_t at = tail_ & (cap_ - 1), bytes = h->bytes;
      if (bytes < kRecordAlign || bytes % kRecordAlign || bytes > cap_ - at || bytes > headCache_ - tail_) {
        corrupt_ = true;  // (reading on would spin on it or run past the ring)
        return nullptr;
      }
      frontBytes_ = bytes;  // (pop() uses the size checked here, not a second read of it)
      if (h->type != kPadding) return reinterpret_cast<const uint8_t*>(h);
      tail_ += bytes;
      freed_ = true;
    }
  }
  // Frees the front record. The space reaches the producer at the next release() (batched: one
  // shared store per poll, not per record).
  void pop() {
    tail_ += frontBytes_;
    freed_ = true;
  }
  void release() {
    if (freed_) idx_->tail.store(tail_, std::memory_order_release);
    freed_ = false;
  }
  // The size of the record front() returned, as checked there.
  size_t frontBytes() const { return frontBytes_; }
  // A record of an impossible size (or a head beyond the ring) was found: nothing more is read
  // from this ring.
  bool corrupt() const { return corrupt_; }
  // Whether records may be waiting, read without the reader's state (any thread may ask; true
  // also for records popped but not yet released).
  static bool mayHaveRecords(const void* base) {
    auto* idx = static_cast<const RingIndices*>(base);
    return idx->head.load(std::memory_order_relaxed) != idx->tail.load(std::memory_order_relaxed);
  }

 private:
  RingIndices* idx_ = nullptr;
  const uint8_t* data_ = nullptr;
  size_t cap_ = 0;
  uint64_t tail_ = 0;
  uint64_t headCache_ = 0;
  bool freed_ = false;
  bool corrupt_ = false;
  size_t frontBytes_ = 0;
};

}  // namespace eccl::transport::shm
