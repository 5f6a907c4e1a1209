// Assertions on transport requests shared by the transport suites.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "transport/transport.h"

namespace eccl::testing {

inline Deadline kLong() { return Deadline::after(std::chrono::seconds(60)); }

// The request fails by `d`, with a message that contains every one of `words`.
inline void expectError(const transport::RequestPtr& r, Deadline d, const std::vector<std::string>& words) {
  try {
    r->wait(d);
    ADD_FAILURE() << "request succeeded";
  } catch (const Error& e) {
    for (auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << e.what() << "\n lacks: " << w;
  }
}

}  // namespace eccl::testing
