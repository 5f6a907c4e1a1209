#include "comm/algorithms/argument_agreement.h"

#include "base/error.h"

namespace eccl::algo {

void requireAgreement(const CollectiveContext& c, const std::string& what, const std::vector<AgreedArgument>& args) {
  // [min0, max0, min1, max1, ...]; min/max are idempotent, so the overlap of dissemination
  // rounds on non-power-of-two groups does no harm.
  std::vector<uint64_t> mine, theirs(2 * args.size());
  for (auto& a : args) mine.insert(mine.end(), {a.value, a.value});
  const size_t bytes = mine.size() * sizeof(uint64_t);
  for (int k = 1; k < c.size; k *= 2) {
    c.sendRecv(c.mod(c.rank + k), mine.data(), bytes, c.mod(c.rank - k), theirs.data(), bytes);
    for (size_t i = 0; i < mine.size(); i += 2) {
      mine[i] = std::min(mine[i], theirs[i]);
      mine[i + 1] = std::max(mine[i + 1], theirs[i + 1]);
    }
  }
  for (size_t i = 0; i < args.size(); ++i)
    if (mine[2 * i] != mine[2 * i + 1])
      throw Error(ErrorCode::kInvalidArgument, what + ": ranks disagree on the " + args[i].name + " (from " +
                                                   std::to_string(mine[2 * i]) + " to " + std::to_string(mine[2 * i + 1]) +
                                                   "; this rank passed " + std::to_string(args[i].value) + ")");
}

}  // namespace eccl::algo
