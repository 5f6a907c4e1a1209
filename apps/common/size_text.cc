#include "apps/common/size_text.h"

namespace eccl {

std::optional<size_t> parseSize(const std::string& text, size_t max, std::string& why) {
  size_t mult = 1;
  std::string digits = text;
  const char last = text.empty() ? 0 : text.back();
  if (last == 'K' || last == 'k') mult = 1 << 10;
  if (last == 'M' || last == 'm') mult = 1 << 20;
  if (last == 'G' || last == 'g') mult = size_t(1) << 30;
  if (mult != 1) digits.pop_back();
  if (digits.empty() || digits.size() > 12 || digits.find_first_not_of("0123456789") != std::string::npos) {
    why = "is not a size (digits with an optional K, M or G)";
    return std::nullopt;
  }
  const size_t v = std::stoull(digits) * mult;  // at most 12 digits × 2^30: no overflow
  if (v > max) {
    why = "is larger than the " + std::to_string(max >> 30) + "G this tool allocates";
    return std::nullopt;
  }
  return v;
}

}  // namespace eccl
