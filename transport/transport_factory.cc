#include "transport/transport_factory.h"

#include <dlfcn.h>


#include "base/env.h"
#include "base/error.h"
#include "transport/routed/routed_transport.h"

namespace eccl::transport {
namespace {

// A transport built as a plugin (so eccl runs where its library is missing). It lives beside
// libeccl_transport (build tree and install alike); loaded once, never unloaded.
struct Plugin {
  void* create = nullptr;
  std::string error;
};

Plugin loadPlugin(const char* file, const char* symbol, const char* package) {
  Plugin plugin;
  Dl_info self{};
  std::string dir = ".";
  if (::dladdr(reinterpret_cast<void*>(&loadPlugin), &self) && self.dli_fname) {
    dir = self.dli_fname;
    dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
  }
  const std::string path = dir + "/" + file;
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    plugin.error = "cannot load " + path + ": " + ::dlerror() + " (is " + package + " installed?)";
    return plugin;
  }
  plugin.create = ::dlsym(handle, symbol);
  if (!plugin.create) plugin.error = path + " has no " + symbol;
  return plugin;
}

const Plugin& ofiPlugin() {
#ifdef ECCL_OFI_PLUGIN_NAME
  static const Plugin plugin = loadPlugin(ECCL_OFI_PLUGIN_NAME, kCreateOfiTransportSymbol, "libfabric (Debian: libfabric1)");
#else
  static const Plugin plugin{nullptr, "this eccl was built without libfabric (install libfabric-dev and rebuild)"};
#endif
  return plugin;
}

const Plugin& verbsPlugin() {
#ifdef ECCL_VERBS_PLUGIN_NAME
  static const Plugin plugin = loadPlugin(ECCL_VERBS_PLUGIN_NAME, kCreateVerbsTransportSymbol, "libibverbs (Debian: libibverbs1 and ibverbs-providers)");
#else
  static const Plugin plugin{nullptr, "this eccl was built without libibverbs (install libibverbs-dev and rebuild)"};
#endif
  return plugin;
}

}  // namespace

TransportOptions resolveTransportOptions(TransportOptions o) {
  if (o.kind.empty()) o.kind = envString("ECCL_TRANSPORT").value_or("auto");
  if (o.kind != "auto" && o.kind != "socket" && o.kind != "ofi" && o.kind != "shm" && o.kind != "verbs")
    throw Error(ErrorCode::kInvalidArgument, "transport '" + o.kind + "' (ECCL_TRANSPORT) is not one of: auto, socket, shm, ofi, verbs");
  if (o.kind == "ofi" && o.ofi.provider.empty()) o.ofi.provider = envString("ECCL_OFI_PROVIDER").value_or("auto");
  if (o.kind == "verbs") {
    if (o.verbs.hca.empty()) o.verbs.hca = envString("ECCL_IB_HCA").value_or("");
    if (o.verbs.gidIndex < 0) o.verbs.gidIndex = static_cast<int>(envInt("ECCL_IB_GID_INDEX", -1));
    if (o.verbs.ibTimeout < 0) o.verbs.ibTimeout = static_cast<int>(envInt("ECCL_IB_TIMEOUT", 20));
    if (o.verbs.retryCount < 0) o.verbs.retryCount = static_cast<int>(envInt("ECCL_IB_RETRY_CNT", 7));
    if (o.verbs.trafficClass < 0) o.verbs.trafficClass = static_cast<int>(envInt("ECCL_IB_TC", 0));
    if (o.verbs.serviceLevel < 0) o.verbs.serviceLevel = static_cast<int>(envInt("ECCL_IB_SL", 0));
  }
  if (o.shm.ringBytes == 0) o.shm.ringBytes = static_cast<size_t>(envInt("ECCL_SHM_RING_BYTES", 0));
  if (o.shm.eagerBytes == 0) o.shm.eagerBytes = static_cast<size_t>(envInt("ECCL_SHM_EAGER_BYTES", 0));
  if (!o.shm.poolBytes) {
    const long long pool = envInt("ECCL_SHM_POOL_BYTES", static_cast<long long>(ShmOptions::kDefaultPoolBytes));
    if (pool < 0) throw Error(ErrorCode::kInvalidArgument, "ECCL_SHM_POOL_BYTES must not be negative, got " + std::to_string(pool));
    o.shm.poolBytes = static_cast<size_t>(pool);
  }
  if (o.shm.chunkBytes == 0) o.shm.chunkBytes = static_cast<size_t>(std::max(0LL, envInt("ECCL_SHM_CHUNK_BYTES", 0)));
  o.socket.host = o.ofi.host = o.shm.host = o.verbs.host = o.host;  // the one address; the nested fields are not read
  return o;
}

std::unique_ptr<Transport> createTransport(GroupIdentity identity, TransportOptions options) {
  options = resolveTransportOptions(std::move(options));
  if (options.host.empty()) throw Error(ErrorCode::kInvalidArgument, identity.describe() + ": no address to listen on (TransportOptions::host)");
  if (options.kind == "socket") return createSocketTransport(std::move(identity), options.socket);
  if (options.kind == "shm") return createShmTransport(std::move(identity), options.shm);
  if (options.kind == "auto") return createRoutedTransport(std::move(identity), {options.host, options.shm, options.socket});
  const bool verbs = options.kind == "verbs";
  const Plugin& plugin = verbs ? verbsPlugin() : ofiPlugin();
  if (!plugin.create)
    throw Error(ErrorCode::kInvalidArgument, identity.describe() + ": ECCL_TRANSPORT=" + options.kind + ": " + plugin.error);
  if (verbs) return std::unique_ptr<Transport>(reinterpret_cast<CreateVerbsTransportFn>(plugin.create)(identity, options.verbs));
  return std::unique_ptr<Transport>(reinterpret_cast<CreateOfiTransportFn>(plugin.create)(identity, options.ofi));
}

}  // namespace eccl::transport
