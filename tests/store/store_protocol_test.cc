#include <gtest/gtest.h>

#include "groups/store/store_protocol.h"
#include "base/error.h"

namespace eccl::store {
namespace {

TEST(StoreProtocol, FrameRoundTrip) {
  std::vector<uint8_t> buf;
  FrameWriter(buf, uint8_t(Command::kSet)).field("key").field(std::string_view("")).u64(0x0102030405060708ull).finish();
  FrameHeader h;
  ASSERT_FALSE(decodeHeader(buf.data(), 1024, h));
  EXPECT_EQ(h.code, uint8_t(Command::kSet));
  EXPECT_EQ(h.bodyBytes, buf.size() - kHeaderBytes);
  FieldReader r(std::span<const uint8_t>(buf).subspan(kHeaderBytes));
  auto f = r.rest();
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(asText(f[0]), "key");
  EXPECT_TRUE(f[1].empty());
  EXPECT_EQ(decodeU64(f[2], "x"), 0x0102030405060708ull);
  EXPECT_EQ(buf[0], 'E');
  EXPECT_EQ(buf[3], '1');
}

TEST(StoreProtocol, HeaderChecksEveryRule) {
  std::vector<uint8_t> good;
  FrameWriter(good, 3).field("abc").finish();
  FrameHeader h;
  auto bad = good;
  bad[0] ^= 0xff;
  EXPECT_NE(decodeHeader(bad.data(), 1024, h)->find("magic"), std::string::npos);
  bad = good;
  bad[4] = 9;
  EXPECT_NE(decodeHeader(bad.data(), 1024, h)->find("version 9"), std::string::npos);
  bad = good;
  bad[7] = 1;
  EXPECT_NE(decodeHeader(bad.data(), 1024, h)->find("reserved"), std::string::npos);
  bad = good;
  bad[8] = bad[9] = bad[10] = bad[11] = 0xff;  // a 4 GiB length
  auto why = decodeHeader(bad.data(), 1024, h);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("4294967295"), std::string::npos) << *why;
}

TEST(StoreProtocol, TruncatedFieldsAreProtocolErrors) {
  std::vector<uint8_t> buf;
  FrameWriter(buf, 3).field("abcdef").finish();
  std::span<const uint8_t> body(buf.data() + kHeaderBytes, buf.size() - kHeaderBytes - 2);
  FieldReader r(body);
  std::span<const uint8_t> f;
  EXPECT_THROW(r.next(f), Error);
  FieldReader r2(body.first(3));
  EXPECT_THROW(r2.next(f), Error);
  EXPECT_THROW(decodeU64(body.first(3), "timeout"), Error);
}

}  // namespace
}  // namespace eccl::store
