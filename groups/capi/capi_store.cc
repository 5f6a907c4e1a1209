// The C API's rendezvous store (server and client) and the launcher bootstrap.
#include "groups/capi/capi_internal.h"
#include "groups/launch/launch_bootstrap.h"
#include "groups/store/store_auth.h"
#include "groups/store/tcp_store_client.h"

using namespace eccl;
using namespace eccl::capi;

namespace {

ecclStoreServer& serverOf(ecclStoreServer_t server) {
  requireLive(server, "store server");
  return *server;
}

TcpStoreServerOptions serverOptions(const std::string& host, uint16_t port) {
  TcpStoreServerOptions o{.host = host, .port = port};
  o.token = store::resolveToken(std::nullopt);
  return o;
}

ecclStore_t newStoreHandle(std::shared_ptr<Store> s, std::shared_ptr<TcpStoreServer> server) {
  auto h = std::make_unique<ecclStore>();
  h->store = std::move(s);
  h->server = std::move(server);
  track(h.get(), "store");
  return h.release();
}

std::shared_ptr<Store> connect(const std::string& address, int64_t timeoutMs) {
  TcpStoreClientOptions o;
  o.timeout = timeoutOf(timeoutMs);
  return std::make_shared<TcpStoreClient>(address, o);
}

void fill(const LaunchEnv& le, ecclLaunchInfo& info) {
  info = {};
  std::snprintf(info.launcher, sizeof info.launcher, "%s", le.launcher.c_str());
  info.rank = le.rank;
  info.size = le.size;
  info.localRank = le.localRank;
  info.localSize = le.localSize;
  if (le.storeHost.size() >= sizeof info.storeHost)
    throw Error(ErrorCode::kInvalidArgument, "store host '" + le.storeHost + "' is longer than ecclLaunchInfo holds");
  std::snprintf(info.storeHost, sizeof info.storeHost, "%s", le.storeHost.c_str());
  info.storePort = le.storePort;
  info.servesStore = le.servesStore ? 1 : 0;
}

}  // namespace

extern "C" {

ecclResult_t ecclStoreServerStart(const char* host, uint16_t port, ecclStoreServer_t* server) {
  return guarded([&] {
    out(server, "server") = nullptr;
    auto h = std::make_unique<ecclStoreServer>();
    h->server = std::make_unique<TcpStoreServer>(serverOptions(host ? host : "127.0.0.1", port));
    track(h.get(), "store server");
    *server = h.release();
  });
}

ecclResult_t ecclStoreServerAddress(ecclStoreServer_t server, char* buf, size_t capacity) {
  return guarded([&] { copyOut(serverOf(server).server->address().str(), buf, capacity, nullptr, "the store address"); });
}

ecclResult_t ecclStoreServerStop(ecclStoreServer_t server) {
  return guarded([&] {
    serverOf(server);
    untrack(server);
    delete server;
  });
}

ecclResult_t ecclStoreConnect(const char* address, int64_t timeoutMs, ecclStore_t* store) {
  return guarded([&] {
    out(store, "store") = nullptr;
    auto s = connect(text(address, "address"), timeoutMs);
    s->numKeys();  // one round trip: an unreachable store is an error now, naming it
    *store = newStoreHandle(std::move(s), nullptr);
  });
}

ecclResult_t ecclStoreSet(ecclStore_t store, const char* key, const void* value, size_t bytes) {
  return guarded([&] {
    need(value, bytes, "value");
    storeOf(store).set(text(key, "key"), ByteView(static_cast<const uint8_t*>(value), bytes));
  });
}

ecclResult_t ecclStoreGet(ecclStore_t store, const char* key, void* buf, size_t capacity, size_t* bytes, int64_t timeoutMs) {
  return guarded([&] {
    const std::string k = text(key, "key");
    Bytes v = storeOf(store).get(k, timeoutOf(timeoutMs));
    if (bytes) *bytes = v.size();
    if (v.size() > capacity || (buf == nullptr && !v.empty()))
      throw Error(ErrorCode::kInvalidArgument, "store key '" + k + "' holds " + std::to_string(v.size()) +
                                                   " bytes, the buffer " + std::to_string(buf ? capacity : 0));
    if (!v.empty()) std::memcpy(buf, v.data(), v.size());
  });
}

ecclResult_t ecclStoreAdd(ecclStore_t store, const char* key, int64_t delta, int64_t* value) {
  return guarded([&] {
    int64_t v = storeOf(store).add(text(key, "key"), delta);
    if (value) *value = v;
  });
}

ecclResult_t ecclStoreWait(ecclStore_t store, const char* const* keys, uint32_t keyCount, int64_t timeoutMs) {
  return guarded([&] {
    auto& s = storeOf(store);
    if (keys == nullptr && keyCount > 0) throw Error(ErrorCode::kInvalidArgument, "keys is null");
    std::vector<std::string> ks;
    for (uint32_t i = 0; i < keyCount; ++i) ks.push_back(text(keys[i], ("keys[" + std::to_string(i) + "]").c_str()));
    s.wait(ks, timeoutOf(timeoutMs));
  });
}

ecclResult_t ecclStoreDelete(ecclStore_t store, const char* key, int* existed) {
  return guarded([&] {
    bool e = storeOf(store).deleteKey(text(key, "key"));
    if (existed) *existed = e ? 1 : 0;
  });
}

ecclResult_t ecclStoreClose(ecclStore_t store) {
  return guarded([&] {
    storeOf(store);
    untrack(store);
    delete store;
  });
}

ecclResult_t ecclLaunchInfoFromEnv(ecclLaunchInfo* info) {
  return guarded([&] { fill(readLaunchEnv(), out(info, "info")); });
}

ecclResult_t ecclBootstrapFromEnv(ecclLaunchInfo* info, ecclStore_t* store) {
  return guarded([&] {
    out(store, "store") = nullptr;
    auto& i = out(info, "info");
    LaunchedJob job = bootstrapFromEnv();
    fill(job.env, i);
    *store = newStoreHandle(std::move(job.store), std::move(job.server));
  });
}

}  // extern "C"
