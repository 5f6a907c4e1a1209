// Captures what eccl logs at warn level and above, so tests can check a drop was logged with a
// reason and the client's address.
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>

#include <memory>
#include <string>

#include "base/logging.h"

namespace eccl::testing {

class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)) {
    sink_->set_level(spdlog::level::warn);
    sink_->set_pattern("%v");
    logger().sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& s = logger().sinks();
    s.erase(std::remove(s.begin(), s.end(), sink_), s.end());
  }
  std::string text() const {
    std::string all;
    for (auto& l : sink_->last_formatted()) all += l;
    return all;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

}  // namespace eccl::testing
