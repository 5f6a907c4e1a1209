// Where experts come from when no surviving rank holds them: the engine's checkpoint. A
// WeightSource fills one expert's block on request; eccl ships CheckpointFile, a file it writes
// and reads, with a SHA-256-based checksum per expert so a damaged file is refused, never served.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "eplb/expert_layout.h"

namespace eccl::eplb {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Fills `block` (layout().blockBytes()) with expert `expert` of `layer`. Throws Error naming
  // the layer, the expert and the source when it cannot (out of range, unreadable, corrupt).
  virtual void read(int layer, int expert, uint8_t* block) = 0;
  // "checkpoint file /path" — for recovery summaries.
  virtual std::string describe() const = 0;
};

// A file of every expert of every layer, for one layout:
//   "ECCLCKP1", u32 layers, u32 experts, u64 payload bytes per expert, u32 layout-description
//   length, the description (ExpertLayout::describe()), u64 checksum per (layer, expert), then
//   the payloads (tensors back to back, no padding), layer-major.
// Reading is thread-safe (pread); any number of processes may read one file.
class CheckpointFile : public WeightSource {
 public:
  // Writes `path` from fill(layer, expert, block): to a temporary file renamed into place, so a
  // reader never sees half a checkpoint. Throws Error(kSystem) naming the path.
  static void write(const std::string& path, const ExpertLayout& layout, int layers, int experts,
                    const std::function<void(int layer, int expert, uint8_t* block)>& fill);
  // Opens `path` and checks it is a checkpoint of `layout`. Throws Error naming the path:
  // kSystem when it cannot be read, kInvalidArgument when it is not a checkpoint of this layout.
  CheckpointFile(std::string path, ExpertLayout layout);
  ~CheckpointFile();
  CheckpointFile(const CheckpointFile&) = delete;
  CheckpointFile& operator=(const CheckpointFile&) = delete;

  void read(int layer, int expert, uint8_t* block) override;
  std::string describe() const override { return "checkpoint file " + path_; }
  int layers() const { return layers_; }
  int experts() const { return experts_; }

 private:
  void readHeader();
  std::string path_;
  ExpertLayout layout_;
  int fd_ = -1;
  int layers_ = 0, experts_ = 0;
  std::vector<uint64_t> checksums_;
  uint64_t dataStart_ = 0;
};

}  // namespace eccl::eplb
