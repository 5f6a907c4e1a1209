// Every collective, every data type and op, sizes 0 / 1 / odd / 1 MiB+3 (and 64 MiB), on 2, 3, 5
// and 8 ranks, in place and out of place, checked byte-exact against a reference computed here.
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include <cstring>
#include <random>

#include "tests/comm/local_comms.h"

namespace eccl {
namespace {

using testing::localComms;
using testing::onEveryRank;

// Small integers: every sum and product below is exact in every type, so the ring's reduction
// order cannot change the result and the comparison can be exact.
double inputValue(int rank, size_t i, ReduceOp op) {
  if (op == ReduceOp::kProd) return ((rank + i) % 3 == 0) ? -1.0 : 1.0;
  return static_cast<double>(static_cast<long>((rank * 7 + i * 3) % 5) - 2);
}

void store(uint8_t* p, DataType t, double v) {
  switch (t) {
    case DataType::kInt8: *reinterpret_cast<int8_t*>(p) = int8_t(v); break;
    case DataType::kInt32: *reinterpret_cast<int32_t*>(p) = int32_t(v); break;
    case DataType::kInt64: *reinterpret_cast<int64_t*>(p) = int64_t(v); break;
    case DataType::kFloat16: *reinterpret_cast<uint16_t*>(p) = floatToHalf(float(v)); break;
    case DataType::kBFloat16: *reinterpret_cast<uint16_t*>(p) = floatToBf16(float(v)); break;
    case DataType::kFloat32: *reinterpret_cast<float*>(p) = float(v); break;
    case DataType::kFloat64: *reinterpret_cast<double*>(p) = v; break;
    case DataType::kUInt8: *p = uint8_t(int64_t(v)); break;  // wraps mod 256, like the sum and product do
    case DataType::kInt16: *reinterpret_cast<int16_t*>(p) = int16_t(v); break;
    default: FAIL() << "no test values for " << dataTypeName(t);
  }
}

std::vector<uint8_t> makeInput(int rank, size_t count, DataType t, ReduceOp op) {
  std::vector<uint8_t> v(count * dataTypeSize(t));
  for (size_t i = 0; i < count; ++i) store(v.data() + i * dataTypeSize(t), t, inputValue(rank, i, op));
  return v;
}

std::vector<uint8_t> reference(int ranks, size_t count, DataType t, ReduceOp op) {
  std::vector<uint8_t> v(count * dataTypeSize(t));
  for (size_t i = 0; i < count; ++i) {
    double acc = inputValue(0, i, op);
    for (int r = 1; r < ranks; ++r) {
      double x = inputValue(r, i, op);
      acc = op == ReduceOp::kSum ? acc + x : op == ReduceOp::kProd ? acc * x : op == ReduceOp::kMin ? std::min(acc, x) : std::max(acc, x);
    }
    store(v.data() + i * dataTypeSize(t), t, acc);
  }
  return v;
}

const DataType kTypes[] = {DataType::kInt8,     DataType::kInt32,   DataType::kInt64,   DataType::kFloat16,
                           DataType::kBFloat16, DataType::kFloat32, DataType::kFloat64, DataType::kUInt8,
                           DataType::kInt16};
const ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kProd, ReduceOp::kMin, ReduceOp::kMax};

class Collectives : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Ranks, Collectives, ::testing::Values(2, 3, 5, 8));

TEST_P(Collectives, AllReduceEveryTypeOpAndSize) {
  const int n = GetParam();
  auto comms = localComms(n);
  for (size_t count : {size_t(0), size_t(1), size_t(1001), size_t((1 << 20) + 3) / 4}) {
    for (DataType t : kTypes) {
      for (ReduceOp op : kOps) {
        if (count > 1001 && op != ReduceOp::kSum && t != DataType::kFloat32) continue;  // keep the matrix quick
        // Inputs are small signed values: uint8 wraps them, which sum and product respect but
        // min and max (comparing wrapped values) do not — those are covered by ReduceBoolAndUInt8.
        if (t == DataType::kUInt8 && (op == ReduceOp::kMin || op == ReduceOp::kMax)) continue;
        auto expect = reference(n, count, t, op);
        onEveryRank(n, [&](int r) {
          auto in = makeInput(r, count, t, op);
          std::vector<uint8_t> out(in.size());
          bool inPlace = (r + count) % 2 == 0;
          if (inPlace) comms[r]->allReduce(in.data(), in.data(), count, t, op);
          else comms[r]->allReduce(in.data(), out.data(), count, t, op);
          const auto& got = inPlace ? in : out;
          ASSERT_TRUE(got == expect) << dataTypeName(t) << " " << reduceOpName(op) << " count " << count << " rank " << r;
        });
      }
    }
  }
}

TEST(ReduceTypes, BoolIsLogicalAndUInt8ComparesUnsigned) {
  uint8_t acc[4] = {0, 1, 0, 1}, in[4] = {0, 0, 1, 1};
  auto run = [&](DataType t, ReduceOp op) {
    std::vector<uint8_t> a(acc, acc + 4);
    reduceInto(a.data(), in, 4, t, op);
    return a;
  };
  EXPECT_EQ(run(DataType::kBool, ReduceOp::kSum), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(run(DataType::kBool, ReduceOp::kMax), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ(run(DataType::kBool, ReduceOp::kProd), (std::vector<uint8_t>{0, 0, 0, 1}));
  EXPECT_EQ(run(DataType::kBool, ReduceOp::kMin), (std::vector<uint8_t>{0, 0, 0, 1}));
  uint8_t big[2] = {200, 3}, small[2] = {100, 250};
  reduceInto(big, small, 2, DataType::kUInt8, ReduceOp::kMax);
  EXPECT_EQ(big[0], 200);
  EXPECT_EQ(big[1], 250);
}

TEST(ReduceTypes, Fp8MovesButDoesNotReduce) {
  for (DataType t : {DataType::kFloat8E4M3, DataType::kFloat8E5M2}) {
    EXPECT_EQ(dataTypeSize(t), 1u);
    uint8_t a = 1, b = 2;
    try {
      reduceInto(&a, &b, 1, t, ReduceOp::kSum);
      ADD_FAILURE() << dataTypeName(t) << " reduced";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(dataTypeName(t)), std::string::npos) << e.what();
    }
  }
  auto comms = localComms(2);
  onEveryRank(2, [&](int r) {
    uint8_t x[4] = {uint8_t(r), 0x7e, 0x80, 0xff}, all[8] = {};
    comms[r]->allGather(x, all, 4);  // moves fine
    EXPECT_EQ(all[4], 1);
    EXPECT_THROW(comms[r]->allReduce(x, x, 4, DataType::kFloat8E4M3, ReduceOp::kSum), Error);
  });
}

TEST_P(Collectives, ReduceScatterEveryType) {
  const int n = GetParam();
  auto comms = localComms(n);
  for (size_t per : {size_t(0), size_t(1), size_t(333), size_t(65539)}) {
    for (DataType t : kTypes) {
      auto expectAll = reference(n, per * n, t, ReduceOp::kSum);
      const size_t es = dataTypeSize(t);
      onEveryRank(n, [&](int r) {
        auto in = makeInput(r, per * n, t, ReduceOp::kSum);
        std::vector<uint8_t> out(per * es);
        comms[r]->reduceScatter(in.data(), out.data(), per, t, ReduceOp::kSum);
        ASSERT_TRUE(std::equal(out.begin(), out.end(), expectAll.begin() + r * per * es)) << dataTypeName(t) << " per " << per;
      });
    }
  }
}

std::vector<uint8_t> block(int rank, size_t bytes) {
  std::vector<uint8_t> v(bytes);
  for (size_t i = 0; i < bytes; ++i) v[i] = static_cast<uint8_t>(rank * 31 + i * 7);
  return v;
}

TEST_P(Collectives, AllGatherInAndOutOfPlace) {
  const int n = GetParam();
  auto comms = localComms(n);
  for (size_t bytes : {size_t(0), size_t(1), size_t(1001), size_t((1 << 20) + 3)}) {
    onEveryRank(n, [&](int r) {
      auto mine = block(r, bytes);
      std::vector<uint8_t> out(bytes * n), inplace(bytes * n);
      comms[r]->allGather(mine.data(), out.data(), bytes);
      std::copy(mine.begin(), mine.end(), inplace.begin() + r * bytes);
      comms[r]->allGather(inplace.data() + r * bytes, inplace.data(), bytes);
      for (int q = 0; q < n; ++q) {
        auto expect = block(q, bytes);
        ASSERT_TRUE(std::equal(expect.begin(), expect.end(), out.begin() + q * bytes)) << "bytes " << bytes << " block " << q;
        ASSERT_TRUE(std::equal(expect.begin(), expect.end(), inplace.begin() + q * bytes));
      }
    });
  }
}

TEST_P(Collectives, AllGatherVBroadcastAllToAllVBarrier) {
  const int n = GetParam();
  auto comms = localComms(n);
  std::vector<size_t> sizes(n);
  for (int r = 0; r < n; ++r) sizes[r] = (r * 7919) % 5000 + (r == 1 ? 0 : 1);
  std::atomic<int> arrived{0};
  onEveryRank(n, [&](int r) {
    // all_gather_v
    auto mine = block(r, sizes[r]);
    std::vector<uint8_t> all(std::accumulate(sizes.begin(), sizes.end(), size_t(0)));
    comms[r]->allGatherV(mine.data(), mine.size(), all.data(), sizes);
    size_t at = 0;
    for (int q = 0; q < n; ++q) {
      auto expect = block(q, sizes[q]);
      ASSERT_TRUE(std::equal(expect.begin(), expect.end(), all.begin() + at));
      at += sizes[q];
    }
    // broadcast from every root
    for (int root = 0; root < n; ++root) {
      for (size_t bytes : {size_t(0), size_t(3), size_t((1 << 20) + 3)}) {
        auto buf = r == root ? block(root, bytes) : std::vector<uint8_t>(bytes);
        comms[r]->broadcast(buf.data(), bytes, root);
        ASSERT_TRUE(buf == block(root, bytes)) << "root " << root << " bytes " << bytes;
      }
    }
    // all_to_all_v: rank r sends (r + 2p) % 9 * 100 bytes to p
    auto amount = [](int from, int to) { return size_t((from + 2 * to) % 9) * 100; };
    std::vector<size_t> sb(n), so(n), rb(n), ro(n);
    for (int p = 0; p < n; ++p) {
      sb[p] = amount(r, p);
      rb[p] = amount(p, r);
    }
    for (int p = 1; p < n; ++p) {
      so[p] = so[p - 1] + sb[p - 1];
      ro[p] = ro[p - 1] + rb[p - 1];
    }
    std::vector<uint8_t> send(so[n - 1] + sb[n - 1]), recv(ro[n - 1] + rb[n - 1]);
    for (int p = 0; p < n; ++p) {
      auto b = block(r * 100 + p, sb[p]);
      std::copy(b.begin(), b.end(), send.begin() + so[p]);
    }
    comms[r]->allToAllV(send.data(), sb, so, recv.data(), rb, ro);
    for (int p = 0; p < n; ++p) {
      auto b = block(p * 100 + r, rb[p]);
      ASSERT_TRUE(std::equal(b.begin(), b.end(), recv.begin() + ro[p])) << "from " << p;
    }
    // barrier: nobody leaves before everybody arrived
    arrived++;
    comms[r]->barrier();
    ASSERT_EQ(arrived.load(), n);
  });
}

TEST(CollectivesLarge, SixtyFourMiB) {
  auto comms = localComms(2);
  const size_t count = (64u << 20) / 4;
  auto expect = reference(2, count, DataType::kFloat32, ReduceOp::kSum);
  onEveryRank(2, [&](int r) {
    auto in = makeInput(r, count, DataType::kFloat32, ReduceOp::kSum);
    comms[r]->allReduce(in.data(), in.data(), count, DataType::kFloat32, ReduceOp::kSum);
    ASSERT_TRUE(in == expect);
    auto mine = block(r, 32u << 20);
    std::vector<uint8_t> out(64u << 20);
    comms[r]->allGather(mine.data(), out.data(), mine.size());
    for (int q = 0; q < 2; ++q) {
      auto b = block(q, 32u << 20);
      ASSERT_TRUE(std::equal(b.begin(), b.end(), out.begin() + q * b.size()));
    }
  });
}

TEST(CollectivesLarge, SixtyFourMiBForTheOtherCollectives) {
  auto comms = localComms(2);
  const size_t bytes = 64u << 20;
  auto expectRs = reference(2, bytes / 4, DataType::kFloat32, ReduceOp::kSum);
  auto expectBf = reference(2, bytes / 2, DataType::kBFloat16, ReduceOp::kSum);
  onEveryRank(2, [&](int r) {
    // reduce_scatter: 64 MiB in, 32 MiB out per rank
    auto in = makeInput(r, bytes / 4, DataType::kFloat32, ReduceOp::kSum);
    std::vector<uint8_t> half(bytes / 2);
    comms[r]->reduceScatter(in.data(), half.data(), bytes / 8, DataType::kFloat32, ReduceOp::kSum);
    ASSERT_TRUE(std::equal(half.begin(), half.end(), expectRs.begin() + r * half.size()));
    // all_reduce in bf16
    auto bf = makeInput(r, bytes / 2, DataType::kBFloat16, ReduceOp::kSum);
    comms[r]->allReduce(bf.data(), bf.data(), bytes / 2, DataType::kBFloat16, ReduceOp::kSum);
    ASSERT_TRUE(bf == expectBf);
    // broadcast
    auto b = r == 1 ? block(1, bytes) : std::vector<uint8_t>(bytes);
    comms[r]->broadcast(b.data(), bytes, 1);
    ASSERT_TRUE(b == block(1, bytes));
    // all_gather_v: 48 MiB from rank 0, 16 MiB from rank 1
    std::vector<size_t> sizes{48u << 20, 16u << 20};
    auto mine = block(r + 10, sizes[r]);
    std::vector<uint8_t> all(bytes);
    comms[r]->allGatherV(mine.data(), mine.size(), all.data(), sizes);
    auto b0 = block(10, sizes[0]), b1 = block(11, sizes[1]);
    ASSERT_TRUE(std::equal(b0.begin(), b0.end(), all.begin()));
    ASSERT_TRUE(std::equal(b1.begin(), b1.end(), all.begin() + sizes[0]));
    // all_to_all_v: 32 MiB to each rank
    std::vector<size_t> cnt{bytes / 2, bytes / 2}, off{0, bytes / 2};
    auto send = block(r + 20, bytes);
    std::vector<uint8_t> recv(bytes);
    comms[r]->allToAllV(send.data(), cnt, off, recv.data(), cnt, off);
    for (int p = 0; p < 2; ++p) {
      auto from = block(p + 20, bytes);
      ASSERT_TRUE(std::equal(recv.begin() + off[p], recv.begin() + off[p] + cnt[p], from.begin() + off[r]));
    }
  });
}

// F9: sizes whose byte count overflows are refused on the spot, naming the operation.
TEST(Collectives, SizesThatOverflowAreRefused) {
  auto comms = localComms(2);
  uint8_t a[8] = {}, b[16] = {};
  const size_t huge = std::numeric_limits<size_t>::max() / 2 + 1;
  for (auto& c : comms) {
    for (auto call : std::vector<std::function<void()>>{
             [&] { c->allGatherAsync(a, b, huge); },
             [&] { c->allReduceAsync(a, b, huge, DataType::kFloat32, ReduceOp::kSum); },
             [&] { c->reduceScatterAsync(a, b, huge / 2, DataType::kInt32, ReduceOp::kSum); }}) {
      try {
        call();
        ADD_FAILURE() << "accepted";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
        EXPECT_NE(std::string(e.what()).find("overflows"), std::string::npos) << e.what();
      }
    }
  }
  onEveryRank(2, [&](int r) { comms[r]->barrier(); });  // nothing was started: the group is fine
}

// F10: ranks that name different broadcast roots, or sizes, all fail with the same verdict
// (they used to return success holding different data); the group stays usable.
TEST_P(Collectives, BroadcastArgumentMismatchFailsOnEveryRank) {
  const int n = GetParam();
  auto comms = localComms(n);
  for (int variant = 0; variant < 2; ++variant) {
    std::vector<std::string> errors(n);
    onEveryRank(n, [&](int r) {
      std::vector<uint8_t> buf(64, uint8_t(r));
      const int root = variant == 0 ? (r == n - 1 ? 1 : 0) : 0;
      const size_t bytes = variant == 1 && r == n / 2 ? 32 : 64;
      try {
        comms[r]->broadcast(buf.data(), bytes, root);
      } catch (const Error& e) {
        errors[r] = e.what();
      }
    });
    for (int r = 0; r < n; ++r) {
      EXPECT_NE(errors[r].find(variant == 0 ? "disagree on the root (from 0 to 1" : "disagree on the size in bytes (from 32 to 64"),
                std::string::npos)
          << "rank " << r << ": '" << errors[r] << "'";
    }
  }
  onEveryRank(n, [&](int r) {  // nothing stray is left: the next broadcast is right
    std::vector<int> v(16, r);
    comms[r]->broadcast(v.data(), v.size() * sizeof(int), n - 1);
    EXPECT_EQ(v, std::vector<int>(16, n - 1));
  });
}

TEST(Reductions, HalfAndBfloatRoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 1e-5f, 3.14159f}) {
    EXPECT_NEAR(halfToFloat(floatToHalf(f)), f, std::abs(f) * 1e-3 + 1e-7) << f;
    EXPECT_NEAR(bf16ToFloat(floatToBf16(f)), f, std::abs(f) * 1e-2 + 1e-30) << f;
  }
  EXPECT_TRUE(std::isinf(halfToFloat(floatToHalf(1e6f))));
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::nanf("")))));
}

}  // namespace
}  // namespace eccl
