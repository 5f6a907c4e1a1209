// Reading structured values off a fuzzer's byte string: each read takes what it needs from the
// front and yields zeros once the input runs out, so every input is a valid program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace eccl::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <class T>
  T take() {
    T v{};
    const size_t n = std::min(sizeof(T), size_ - pos_);
    std::memcpy(&v, data_ + pos_, n);
    pos_ += n;
    return v;
  }
  // Up to `max` bytes, their count chosen by the input.
  std::string bytes(size_t max) {
    const size_t wanted = take<uint16_t>() % (max + 1);  // first: it moves pos_ (GCC evaluates
    const size_t n = std::min(wanted, size_ - pos_);    // arguments right to left; TSan caught it)
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  bool empty() const { return pos_ >= size_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace eccl::fuzz
