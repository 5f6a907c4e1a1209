#include "transport/transport_factory.h"

#include <dlfcn.h>

#include <mutex>

#include "base/env.h"
#include "base/error.h"
#include "transport/routed/routed_transport.h"

namespace eccl::transport {
namespace {

struct OfiPlugin {
  CreateOfiTransportFn create = nullptr;
  std::string error;
};

// The plugin lives beside libeccl_transport (build tree and install alike); loaded once, never
// unloaded.
const OfiPlugin& ofiPlugin() {
  static OfiPlugin plugin;
  static std::once_flag once;
  std::call_once(once, [] {
#ifndef ECCL_OFI_PLUGIN_NAME
    plugin.error = "this eccl was built without libfabric (install libfabric-dev and rebuild)";
#else
    Dl_info self{};
    std::string dir = ".";
    if (::dladdr(reinterpret_cast<void*>(&ofiPlugin), &self) && self.dli_fname) {
      dir = self.dli_fname;
      dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
    }
    const std::string path = dir + "/" + ECCL_OFI_PLUGIN_NAME;
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      plugin.error = "cannot load the libfabric transport " + path + ": " + ::dlerror() +
                     " (is libfabric installed? Debian: apt-get install libfabric1)";
      return;
    }
    plugin.create = reinterpret_cast<CreateOfiTransportFn>(::dlsym(handle, kCreateOfiTransportSymbol));
    if (!plugin.create) plugin.error = path + " has no " + kCreateOfiTransportSymbol;
#endif
  });
  return plugin;
}

}  // namespace

TransportOptions resolveTransportOptions(TransportOptions o) {
  if (o.kind.empty()) o.kind = envString("ECCL_TRANSPORT").value_or("auto");
  if (o.kind != "auto" && o.kind != "socket" && o.kind != "ofi" && o.kind != "shm")
    throw Error(ErrorCode::kInvalidArgument, "transport '" + o.kind + "' (ECCL_TRANSPORT) is not one of: auto, socket, shm, ofi");
  if (o.kind == "ofi" && o.ofi.provider.empty()) o.ofi.provider = envString("ECCL_OFI_PROVIDER").value_or("auto");
  if (o.shm.ringBytes == 0) o.shm.ringBytes = static_cast<size_t>(envInt("ECCL_SHM_RING_BYTES", 0));
  if (o.shm.eagerBytes == 0) o.shm.eagerBytes = static_cast<size_t>(envInt("ECCL_SHM_EAGER_BYTES", 0));
  o.socket.host = o.ofi.host = o.shm.host = o.host;  // the one address; the nested fields are not read
  return o;
}

std::unique_ptr<Transport> createTransport(GroupIdentity identity, TransportOptions options) {
  options = resolveTransportOptions(std::move(options));
  if (options.host.empty()) throw Error(ErrorCode::kInvalidArgument, identity.describe() + ": no address to listen on (TransportOptions::host)");
  if (options.kind == "socket") return createSocketTransport(std::move(identity), options.socket);
  if (options.kind == "shm") return createShmTransport(std::move(identity), options.shm);
  if (options.kind == "auto") return createRoutedTransport(std::move(identity), {options.host, options.shm, options.socket});
  const OfiPlugin& plugin = ofiPlugin();
  if (!plugin.create) throw Error(ErrorCode::kInvalidArgument, identity.describe() + ": ECCL_TRANSPORT=ofi: " + plugin.error);
  return std::unique_ptr<Transport>(plugin.create(identity, options.ofi));
}

}  // namespace eccl::transport
