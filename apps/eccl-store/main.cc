// eccl-store: the rendezvous store as a standalone server.
//   eccl-store --host 127.0.0.1 --port 29500 [--token-file F] [--port-file P]
// Serves until SIGINT or SIGTERM.
#include <signal.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "groups/store/store_auth.h"
#include "groups/store/tcp_store_server.h"
#include "base/error.h"

namespace {

// Many clients need many descriptors: lift the soft limit to the hard one.
void raiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Written whole (temporary file, then rename) so a reader never sees a partial number.
void writePortFile(const std::string& path, uint16_t port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    out.close();
    if (!out) throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "--port-file: cannot write '" + tmp + "': " +
                                                                       std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    throw eccl::Error(eccl::ErrorCode::kInvalidArgument, "--port-file: cannot rename '" + tmp + "' to '" + path +
                                                             "': " + std::strerror(err));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"eccl rendezvous store server"};
  eccl::TcpStoreServerOptions opts;
  std::string tokenFile, portFile;
  size_t maxKey = opts.limits.maxKeyBytes, maxValue = opts.limits.maxValueBytes;
  app.add_option("--host", opts.host, "address to bind exactly (IPv4, IPv6 or name)")->capture_default_str();
  app.add_option("--port", opts.port, "port; 0 picks a free one")->capture_default_str();
  app.add_option("--token-file", tokenFile, "file holding the shared secret clients must prove")->check(CLI::ExistingFile);
  app.add_option("--port-file", portFile, "write the bound port to this file once listening");
  app.add_option("--max-key-bytes", maxKey, "largest key accepted")->capture_default_str();
  app.add_option("--max-value-bytes", maxValue, "largest value accepted")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  // Block before the server thread starts so only sigwait below sees them.
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  raiseFdLimit();
  try {
    opts.token = eccl::store::resolveToken(std::nullopt, tokenFile.empty() ? std::nullopt : std::optional(tokenFile));
    opts.limits.maxKeyBytes = maxKey;
    opts.limits.maxValueBytes = maxValue;
    try {
      opts.limits.validate();
    } catch (const eccl::Error& e) {
      std::fprintf(stderr, "eccl-store: --max-key-bytes/--max-value-bytes: %s\n", e.what());
      return 1;
    }
    eccl::TcpStoreServer server(opts);
    std::printf("eccl-store listening on %s%s\n", server.address().str().c_str(),
                opts.token ? " (token required)" : "");
    std::fflush(stdout);
    if (!portFile.empty()) writePortFile(portFile, server.address().port());
    int sig = 0;
    sigwait(&stopSignals, &sig);
    std::printf("eccl-store: signal %d, shutting down\n", sig);
  } catch (const eccl::Error& e) {
    std::fprintf(stderr, "eccl-store: %s\n", e.what());
    return 1;
  }
  return 0;
}
