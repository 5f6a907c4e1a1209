// N communicators of one group inside this process, and a helper that runs one function per
// rank on its own thread (collectives block until every rank has joined).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "tests/transport/local_group.h"

namespace eccl::testing {

inline std::vector<std::unique_ptr<Communicator>> localComms(int n, CommOptions opts = {}, transport::SocketOptions so = {}) {
  std::vector<std::unique_ptr<Communicator>> out;
  for (auto& t : localGroup(n, so)) out.push_back(std::make_unique<Communicator>(std::move(t), opts));
  return out;
}

inline void onEveryRank(int n, const std::function<void(int rank)>& fn) {
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(n);
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace eccl::testing
