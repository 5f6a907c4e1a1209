// The store's frame parser and command state machine (what a hostile client reaches before and
// after authentication). The input is a conversation: frames of (command, fields) built with a
// valid header, plus every 12-byte window of the raw input offered to the header decoder.
// Invariants: only eccl::Error escapes a request; a protocol error ends the conversation (the
// server drops that client); every reply decodes and stays within the frame limit.
#include <cstdlib>

#include "base/error.h"
#include "fuzz/fuzz_input.h"
#include "groups/store/store_state.h"

using namespace eccl;
using namespace eccl::store;

namespace {

void checkReply(const std::vector<uint8_t>& reply, const StoreLimits& limits) {
  size_t pos = 0;
  while (pos < reply.size()) {
    FrameHeader h;
    if (reply.size() - pos < kHeaderBytes || decodeHeader(reply.data() + pos, limits.maxBodyBytes(), h)) std::abort();
    if (reply.size() - pos - kHeaderBytes < h.bodyBytes) std::abort();
    FieldReader r(std::span<const uint8_t>(reply.data() + pos + kHeaderBytes, h.bodyBytes));
    r.rest();  // throws on a malformed field: a crash here is a bug in the reply writer
    pos += kHeaderBytes + h.bodyBytes;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (size_t i = 0; i + kHeaderBytes <= size && i < 64; ++i) {
    FrameHeader h;
    (void)decodeHeader(data + i, 1 << 20, h);
  }
  const StoreLimits limits{.maxKeyBytes = 32, .maxValueBytes = 2048};
  StoreState state(limits);
  fuzz::FuzzInput in(data, size);
  std::vector<uint8_t> reply, frame;
  std::vector<std::string> changed;
  while (!in.empty()) {
    const uint8_t code = in.take<uint8_t>() % 17;  // includes two codes past the last command
    frame.clear();
    FrameWriter w(frame, code);
    for (int n = in.take<uint8_t>() % 6; n > 0; --n) {
      if (in.take<uint8_t>() % 4 == 0) w.u64(in.take<uint64_t>() % 5000);  // timeouts, deltas
      else w.field(in.bytes(2100));
    }
    w.finish();
    reply.clear();
    changed.clear();
    try {
      auto wait = state.execute(static_cast<Command>(code),
                                std::span<const uint8_t>(frame.data() + kHeaderBytes, frame.size() - kHeaderBytes),
                                reply, changed);
      if (wait) {
        if (state.allExist(wait->keys)) state.replyToWait(*wait, reply);
        else state.replyTimeout(*wait, reply);
      }
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kProtocol) break;  // the server drops this client
      if (!reply.empty()) std::abort();             // an error must not leave half a reply
    }
    checkReply(reply, limits);
  }
  return 0;
}
