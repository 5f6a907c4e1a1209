#include "transport/shm/shm_copy.h"

#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>  // SSE2: part of x86-64, so no dispatch is needed
#endif

namespace eccl::transport::shm {

void copyToSlotAndLocal(uint8_t* slot, uint8_t* local, const uint8_t* src, size_t bytes) {
  size_t done = 0;
#if defined(__x86_64__)
  // Streaming stores need 16-byte-aligned destinations; pool slots are page-aligned, so only a
  // chunk at an odd offset (never, today) would take the plain path below.
  if (reinterpret_cast<uintptr_t>(slot) % 16 == 0) {
    constexpr size_t kStep = 64;  // a cache line a turn: four loads, eight stores
    for (; done + kStep <= bytes; done += kStep) {
      auto* s = reinterpret_cast<const __m128i*>(src + done);
      auto* p = reinterpret_cast<__m128i*>(slot + done);
      auto* l = reinterpret_cast<__m128i*>(local + done);
      const __m128i a = _mm_loadu_si128(s), b = _mm_loadu_si128(s + 1), c = _mm_loadu_si128(s + 2), d = _mm_loadu_si128(s + 3);
      _mm_stream_si128(p, a);
      _mm_stream_si128(p + 1, b);
      _mm_stream_si128(p + 2, c);
      _mm_stream_si128(p + 3, d);
      _mm_storeu_si128(l, a);
      _mm_storeu_si128(l + 1, b);
      _mm_storeu_si128(l + 2, c);
      _mm_storeu_si128(l + 3, d);
    }
  }
#endif
  if (done < bytes) {
    std::memcpy(slot + done, src + done, bytes - done);
    std::memcpy(local + done, src + done, bytes - done);
  }
#if defined(__x86_64__)
  _mm_sfence();  // streaming stores are weakly ordered: they must land before the chunk's record
#endif
}

}  // namespace eccl::transport::shm
