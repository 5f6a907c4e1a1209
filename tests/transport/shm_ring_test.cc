// The shared-memory ring on plain memory: records in order, padding at the wrap, back-pressure
// when full, and a producer and a consumer thread moving many records of varied sizes.
#include "transport/shm/shm_ring.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace eccl::transport::shm {
namespace {

constexpr size_t kCap = 4096;

struct Ring {
  alignas(64) uint8_t mem[sizeof(RingIndices) + kCap] = {};
  Ring() { new (mem) RingIndices; }
};

// A record: header, u32 sequence number, then `fill` bytes of that number's low byte.
bool put(RingWriter& w, uint32_t seq, size_t fill) {
  uint8_t* r = w.reserve(sizeof(RecordHeader) + 4 + fill);
  if (!r) return false;
  reinterpret_cast<RecordHeader*>(r)->type = 1;
  std::memcpy(r + sizeof(RecordHeader), &seq, 4);
  std::memset(r + sizeof(RecordHeader) + 4, static_cast<int>(seq & 0xff), fill);
  w.commit();
  return true;
}

uint32_t seqOf(const uint8_t* r) {
  uint32_t s;
  std::memcpy(&s, r + sizeof(RecordHeader), 4);
  return s;
}

TEST(ShmRing, RecordsComeOutInOrderAndAreAligned) {
  Ring ring;
  RingWriter w(ring.mem, kCap);
  RingReader r(ring.mem, kCap);
  EXPECT_EQ(r.front(), nullptr);
  EXPECT_FALSE(RingReader::mayHaveRecords(ring.mem));
  ASSERT_TRUE(put(w, 1, 3));
  ASSERT_TRUE(put(w, 2, 100));
  EXPECT_TRUE(RingReader::mayHaveRecords(ring.mem));
  const uint8_t* a = r.front();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(seqOf(a), 1u);
  EXPECT_EQ(reinterpret_cast<const RecordHeader*>(a)->bytes % kRecordAlign, 0u);
  EXPECT_EQ(r.front(), a);  // front() does not consume
  r.pop();
  const uint8_t* b = r.front();
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(seqOf(b), 2u);
  EXPECT_EQ(reinterpret_cast<const RecordHeader*>(b)->bytes, 128u);  // 8 + 4 + 100 rounded up
  r.pop();
  EXPECT_EQ(r.front(), nullptr);
  r.release();
  EXPECT_FALSE(RingReader::mayHaveRecords(ring.mem));
}

TEST(ShmRing, FullRingRefusesUntilTheReaderReleases) {
  Ring ring;
  RingWriter w(ring.mem, kCap);
  RingReader r(ring.mem, kCap);
  int n = 0;
  while (put(w, n, 500)) ++n;  // 512-byte records
  EXPECT_EQ(n, 8);
  ASSERT_NE(r.front(), nullptr);
  r.pop();
  EXPECT_FALSE(put(w, 99, 500));  // popped but not released: the writer cannot see the space
  r.release();
  EXPECT_TRUE(put(w, 99, 500));
  EXPECT_FALSE(w.reserve(kCap + 1));  // larger than the ring: never fits
}

TEST(ShmRing, RecordsThatDoNotFitBeforeTheEndWrapWithPadding) {
  Ring ring;
  RingWriter w(ring.mem, kCap);
  RingReader r(ring.mem, kCap);
  for (uint32_t i = 0; i < 7; ++i) ASSERT_TRUE(put(w, i, 500));  // 3584 bytes used
  for (int i = 0; i < 7; ++i) {
    ASSERT_NE(r.front(), nullptr);
    r.pop();
  }
  r.release();
  ASSERT_TRUE(put(w, 7, 1000));  // 1024 bytes: only 512 left before the end, so it wraps
  const uint8_t* rec = r.front();
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(seqOf(rec), 7u);
  EXPECT_EQ(rec, ring.mem + sizeof(RingIndices));  // at offset 0, past the padding
}

TEST(ShmRing, ARecordOfAnImpossibleSizeStopsTheReaderInsteadOfSpinning) {
  for (uint32_t bad : {0u, 65u, 3 * 64u, uint32_t(kCap) * 2}) {  // zero, unaligned, past head, past the end
    Ring ring;
    RingWriter w(ring.mem, kCap);
    RingReader r(ring.mem, kCap);
    ASSERT_TRUE(put(w, 1, 100));  // one 128-byte record
    reinterpret_cast<RecordHeader*>(ring.mem + sizeof(RingIndices))->bytes = bad;
    EXPECT_EQ(r.front(), nullptr) << bad;
    EXPECT_TRUE(r.corrupt()) << bad;
  }
  Ring ring;  // a head more than a ring ahead of the tail
  RingReader r(ring.mem, kCap);
  reinterpret_cast<RingIndices*>(ring.mem)->head.store(3 * kCap);
  EXPECT_EQ(r.front(), nullptr);
  EXPECT_TRUE(r.corrupt());
}

TEST(ShmRing, AProducerAndAConsumerThreadMoveManyRecordsIntact) {
  Ring ring;
  RingWriter w(ring.mem, kCap);
  RingReader r(ring.mem, kCap);
  constexpr uint32_t kCount = 200000;
  std::thread producer([&] {
    for (uint32_t i = 0; i < kCount; ++i)
      while (!put(w, i, (i * 37) % 1500)) std::this_thread::yield();
  });
  uint32_t expect = 0;
  bool intact = true;
  while (expect < kCount) {
    const uint8_t* rec = r.front();
    if (!rec) {
      r.release();
      std::this_thread::yield();
      continue;
    }
    const uint32_t s = seqOf(rec);
    const size_t fill = (s * 37) % 1500;
    intact &= s == expect;
    for (size_t k = 0; k < fill; k += 97) intact &= rec[sizeof(RecordHeader) + 4 + k] == (s & 0xff);
    r.pop();
    ++expect;
    if (expect % 4 == 0) r.release();
  }
  r.release();
  producer.join();
  EXPECT_TRUE(intact);
}

}  // namespace
}  // namespace eccl::transport::shm
