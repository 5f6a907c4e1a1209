// The driver of a fuzz harness when it is not linked with libFuzzer (GCC builds, the normal
// suite): runs LLVMFuzzerTestOneInput once on every file named, or in every directory named,
// so the committed corpus replays as a regression test. A crash or sanitizer report fails it.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.push_back(p);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "%s: no inputs (give corpus files or directories)\n", argv[0]);
    return 2;
  }
  for (auto& f : files) {
    // Exactly the file's bytes in a buffer of exactly that size, as libFuzzer passes them, so a
    // harness reading one byte too far is caught by the sanitizers.
    std::ifstream in(f, std::ios::binary);
    const auto size = static_cast<size_t>(std::filesystem::file_size(f));
    std::unique_ptr<uint8_t[]> bytes(new uint8_t[size ? size : 1]);
    in.read(reinterpret_cast<char*>(bytes.get()), static_cast<std::streamsize>(size));
    LLVMFuzzerTestOneInput(bytes.get(), size);
  }
  std::printf("replayed %zu inputs\n", files.size());
  return 0;
}
