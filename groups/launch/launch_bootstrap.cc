#include "groups/launch/launch_bootstrap.h"

#include "base/error.h"
#include "groups/store/store_auth.h"
#include "groups/store/tcp_store_client.h"

namespace eccl {

LaunchedJob bootstrapFromEnv(const EnvLookup& env) {
  LaunchedJob job;
  job.env = readLaunchEnv(env);
  if (job.env.servesStore) {
    TcpStoreServerOptions o{.host = job.env.storeHost, .port = job.env.storePort};
    o.token = store::resolveToken(std::nullopt);
    try {
      job.server = std::make_shared<TcpStoreServer>(o);
    } catch (const Error& e) {
      throw Error(e.code(), "rank 0 cannot serve the store at " + job.env.storeAddress() + " (" + job.env.launcher +
                                " launch; set $ECCL_STORE_PORT or $ECCL_STORE_ADDR): " + e.what());
    }
  }
  auto client = std::make_shared<TcpStoreClient>(job.env.storeAddress());
  client->numKeys();  // one round trip: an unreachable store fails here, naming it
  job.store = std::move(client);
  return job;
}

LaunchedJob bootstrapFromEnv() { return bootstrapFromEnv(processEnv); }

}  // namespace eccl
