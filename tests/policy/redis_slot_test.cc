#include <gtest/gtest.h>

#include "store_backends.h"

namespace qm::policy {
namespace {

// The values Redis itself gives (CLUSTER KEYSLOT) and the specification's hash-tag rules.
TEST(RedisKeySlot, FollowsTheClusterSpecification) {
  EXPECT_EQ(RedisKeySlot("foo"), 12182);
  EXPECT_EQ(RedisKeySlot("123456789"), 0x31C3 & 16383);  // the spec's CRC16 check value
  EXPECT_EQ(RedisKeySlot("{user1000}.following"), RedisKeySlot("{user1000}.followers"));
  EXPECT_EQ(RedisKeySlot("{user1000}.following"), RedisKeySlot("user1000"));
  EXPECT_EQ(RedisKeySlot("foo{}{bar}"), RedisKeySlot("foo{}{bar}"));
  EXPECT_NE(RedisKeySlot("foo{}{bar}"), RedisKeySlot("bar"));  // an empty tag: the whole key
  EXPECT_EQ(RedisKeySlot("foo{{bar}}zap"), RedisKeySlot("{bar"));
  EXPECT_EQ(RedisKeySlot("foo{bar}{zap}"), RedisKeySlot("bar"));
  // A customer's three keys share one slot.
  EXPECT_EQ(RedisKeySlot("qm:{C0001}:s"), RedisKeySlot("qm:{C0001}:l"));
  EXPECT_EQ(RedisKeySlot("qm:{C0001}:s"), RedisKeySlot("qm:{C0001}:d"));
}

}  // namespace
}  // namespace qm::policy
