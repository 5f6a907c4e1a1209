#include "eplb/weight_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace eccl::eplb {
namespace {

constexpr char kMagic[8] = {'E', 'C', 'C', 'L', 'C', 'K', 'P', '1'};

void writeAll(int fd, const void* data, size_t n, const std::string& path) {
  auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throwSystemError("writing checkpoint " + path, errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Reads exactly n bytes at `offset`; false at end of file.
bool readAt(int fd, void* data, size_t n, uint64_t offset, const std::string& path) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throwSystemError("reading checkpoint " + path, errno);
    if (r == 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

}  // namespace

void CheckpointFile::write(const std::string& path, const ExpertLayout& layout, int layers, int experts,
                           const std::function<void(int, int, uint8_t*)>& fill) {
  if (layers <= 0 || experts <= 0)
    throw Error(ErrorCode::kInvalidArgument, "checkpoint " + path + ": " + std::to_string(layers) + " layers x " +
                                                 std::to_string(experts) + " experts: both must be positive");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  struct File {
    int fd;
    ~File() { reset(); }
    void reset() {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    int get() const { return fd; }
  } fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (fd.get() < 0) throwSystemError("creating checkpoint " + tmp, errno);
  try {
    const std::string desc = layout.describe();
    std::vector<uint8_t> header(kMagic, kMagic + 8);
    put<uint32_t>(header, layers);
    put<uint32_t>(header, experts);
    put<uint64_t>(header, layout.payloadBytes());
    put<uint32_t>(header, static_cast<uint32_t>(desc.size()));
    header.insert(header.end(), desc.begin(), desc.end());
    const size_t index = header.size();
    header.resize(index + size_t(layers) * experts * 8);
    writeAll(fd.get(), header.data(), header.size(), tmp);
    std::vector<uint8_t> block(layout.blockBytes());
    std::vector<uint64_t> sums;
    for (int l = 0; l < layers; ++l)
      for (int e = 0; e < experts; ++e) {
        fill(l, e, block.data());
        sums.push_back(expertChecksum(block.data(), layout));
        for (int t = 0; t < layout.tensorCount(); ++t) writeAll(fd.get(), block.data() + layout.offset(t), layout.tensorBytes(t), tmp);
      }
    if (::pwrite(fd.get(), sums.data(), sums.size() * 8, static_cast<off_t>(index)) != static_cast<ssize_t>(sums.size() * 8))
      throwSystemError("writing checkpoint index " + tmp, errno);
    if (::fsync(fd.get()) != 0) throwSystemError("syncing checkpoint " + tmp, errno);
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) throwSystemError("renaming checkpoint " + tmp + " to " + path, errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

CheckpointFile::CheckpointFile(std::string path, ExpertLayout layout) : path_(std::move(path)), layout_(std::move(layout)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throwSystemError("opening checkpoint " + path_, errno);
  try {
    readHeader();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

CheckpointFile::~CheckpointFile() { ::close(fd_); }

void CheckpointFile::readHeader() {
  auto notOurs = [&](const std::string& why) { return Error(ErrorCode::kInvalidArgument, "checkpoint " + path_ + ": " + why); };
  uint8_t head[28];
  if (!readAt(fd_, head, sizeof head, 0, path_) || std::memcmp(head, kMagic, 8) != 0)
    throw notOurs("not an eccl checkpoint (no ECCLCKP1 header)");
  uint32_t layers, experts, descBytes;
  uint64_t payload;
  std::memcpy(&layers, head + 8, 4);
  std::memcpy(&experts, head + 12, 4);
  std::memcpy(&payload, head + 16, 8);
  std::memcpy(&descBytes, head + 24, 4);
  if (layers == 0 || experts == 0 || layers > (1u << 20) || experts > (1u << 20) || descBytes > 65536)
    throw notOurs("implausible header (" + std::to_string(layers) + " layers, " + std::to_string(experts) + " experts)");
  std::string desc(descBytes, '\0');
  if (!readAt(fd_, desc.data(), descBytes, sizeof head, path_)) throw notOurs("truncated header");
  if (payload != layout_.payloadBytes() || desc != layout_.describe())
    throw notOurs("written for experts of " + desc + " (" + std::to_string(payload) + " bytes), not " + layout_.describe() + " (" +
                  std::to_string(layout_.payloadBytes()) + " bytes)");
  layers_ = static_cast<int>(layers);
  experts_ = static_cast<int>(experts);
  checksums_.resize(size_t(layers) * experts);
  const uint64_t index = sizeof head + descBytes;
  if (!readAt(fd_, checksums_.data(), checksums_.size() * 8, index, path_)) throw notOurs("truncated index");
  dataStart_ = index + checksums_.size() * 8;
}

void CheckpointFile::read(int layer, int expert, uint8_t* block) {
  const std::string what = "expert " + std::to_string(expert) + " of layer " + std::to_string(layer) + " from " + describe();
  if (layer < 0 || layer >= layers_ || expert < 0 || expert >= experts_)
    throw Error(ErrorCode::kInvalidArgument, what + ": it holds " + std::to_string(layers_) + " layers x " + std::to_string(experts_) + " experts");
  uint64_t at = dataStart_ + (uint64_t(layer) * experts_ + expert) * layout_.payloadBytes();
  std::memset(block, 0, layout_.blockBytes());
  for (int t = 0; t < layout_.tensorCount(); ++t) {
    if (!readAt(fd_, block + layout_.offset(t), layout_.tensorBytes(t), at, path_))
      throw Error(ErrorCode::kInvalidArgument, what + ": the file is truncated");
    at += layout_.tensorBytes(t);
  }
  if (expertChecksum(block, layout_) != checksums_[size_t(layer) * experts_ + expert])
    throw Error(ErrorCode::kInvalidArgument, what + ": checksum mismatch (the file is damaged)");
}

}  // namespace eccl::eplb
