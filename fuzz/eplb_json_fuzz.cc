// eccl-eplb's readers of expert maps and expert loads (files an operator or engine hands over).
// Invariants: a bad document is an eccl::Error naming it, never another exception or a crash;
// what is accepted writes back to JSON that reads in again to the same thing.
#include <cstdlib>

#include "base/error.h"
#include "eplb/eplb_json.h"

using namespace eccl;
using namespace eccl::eplb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    Placement p = parseExpertMap(text, "fuzz map");
    Placement again = parseExpertMap(expertMapJson(p), "written map");
    if (expertMapJson(again) != expertMapJson(p)) std::abort();
  } catch (const Error&) {
  }
  try {
    ExpertLoads l = parseLoads(text, "fuzz loads");
    ExpertLoads again = parseLoads(loadsJson(l), "written loads");
    if (loadsJson(again) != loadsJson(l)) std::abort();
  } catch (const Error&) {
  }
  return 0;
}
