// RequestState: completion published without a lock, sleepers woken, the first finish winning,
// and operations sharing their request's allocation (makeOperation). No transport.
#include "transport/request_state.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "base/error.h"

namespace eccl::transport {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<RequestState> request(std::shared_ptr<CallerProgress> progress = nullptr) {
  auto names = std::make_shared<RequestLabel::Names>();
  names->group = "group 't' epoch 0 rank 0 of 2";
  names->peers = {"rank 0", "rank 1"};
  return std::make_shared<RequestState>(RequestLabel{names, RequestLabel::Op::kRecv, 8, 1, 3}, std::move(progress));
}

// The waiter sleeps on the condition variable (no caller polling); a finish from another thread,
// at any moment around the waiter going to sleep, must wake it: none of many waits may time out.
TEST(RequestState, AFinishNeverMissesASleepingWaiter) {
  for (int i = 0; i < 2000; ++i) {
    auto r = request();
    std::thread finisher([&] {
      if (i % 4 == 0) std::this_thread::sleep_for(50us);  // past the waiter's brief spin: it sleeps
      else if (i % 3) std::this_thread::yield();
      if (i % 2) r->complete();
      else r->fail(ErrorCode::kRemote, "boom");
    });
    try {
      r->wait(Deadline::after(20s));
      EXPECT_EQ(i % 2, 1) << "round " << i;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kRemote) << "round " << i << ": " << e.what();
    }
    finisher.join();
  }
}

TEST(RequestState, TheFirstFinishWinsAndItsOutcomeStays) {
  auto r = request();
  r->fail(ErrorCode::kConnectionClosed, "peer gone");
  r->complete();
  r->fail(ErrorCode::kRemote, "later");
  EXPECT_TRUE(r->test());
  EXPECT_EQ(r->error(), std::optional<std::string>("peer gone"));
  try {
    r->wait(Deadline::after(1s));
    FAIL() << "a failed request must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConnectionClosed);
    EXPECT_STREQ(e.what(), "peer gone");
  }
  auto ok = request();
  EXPECT_EQ(ok->error(), std::nullopt) << "unfinished: no error yet";
  ok->complete();
  ok->fail(ErrorCode::kRemote, "too late");
  EXPECT_EQ(ok->error(), std::nullopt);
  EXPECT_NO_THROW(ok->wait(Deadline::after(1s)));
}

// Many finishers race; exactly one outcome is seen by every waiter, however many.
TEST(RequestState, RacingFinishersLeaveOneOutcomeForEveryWaiter) {
  for (int round = 0; round < 200; ++round) {
    auto r = request();
    std::atomic<int> threw{0}, returned{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < 3; ++w)
      threads.emplace_back([&] {
        try {
          r->wait(Deadline::after(20s));
          ++returned;
        } catch (const Error&) {
          ++threw;
        }
      });
    for (int f = 0; f < 3; ++f)
      threads.emplace_back([&, f] {
        if (f == 1) r->complete();
        else r->fail(ErrorCode::kRemote, "finisher " + std::to_string(f));
        EXPECT_TRUE(r->test()) << "a finish returned (winning or not) before the request was finished";
      });
    for (auto& t : threads) t.join();
    EXPECT_TRUE(threw == 3 || returned == 3) << "round " << round << ": " << threw << " threw, " << returned << " returned";
    EXPECT_EQ(threw == 3, r->error().has_value());
  }
}

TEST(RequestState, ATimedOutWaitWithdrawsTheRequestAndNamesIt) {
  auto r = request();
  bool withdrawn = false;
  r->setCanceller([&] { withdrawn = true; });
  try {
    r->wait(Deadline::after(20ms));
    FAIL() << "nothing finishes it: the wait must time out";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout);
    EXPECT_NE(std::string(e.what()).find("receive of 8 bytes from rank 1, tag 3 timed out"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(withdrawn);
  EXPECT_TRUE(r->test());
}

struct Op {
  RequestState* req = nullptr;
  int payload = 0;
};

// The operation and its request share one allocation: either keeps both alive, and the
// operation's plain pointer is its own request.
TEST(RequestState, MakeOperationSharesOneLifetime) {
  auto names = std::make_shared<RequestLabel::Names>();
  auto [op, req] = makeOperation<Op>(RequestLabel{names, RequestLabel::Op::kSend, 4, 1, 0}, nullptr);
  EXPECT_EQ(op->req, req.get());
  std::weak_ptr<Op> watch = op;
  op.reset();
  EXPECT_FALSE(watch.expired()) << "the request keeps its operation";
  watch.lock()->req->complete();
  EXPECT_TRUE(req->test());
  req.reset();
  EXPECT_TRUE(watch.expired()) << "nothing else holds it";
}

}  // namespace
}  // namespace eccl::transport
