#include "qianmian/push/shard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qm::push {
namespace {

TEST(Shard, ParsesKOverNAndRefusesAnythingElse) {
  auto s = ParseShard("2/3");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->k, 2);
  EXPECT_EQ(s->n, 3);
  EXPECT_EQ(s->ToString(), "2/3");
  EXPECT_TRUE(ParseShard("1/1")->all());
  EXPECT_TRUE(ParseShard("65536/65536").ok());
  for (const char* bad : {"", "3", "/3", "1/", "0/3", "4/3", "1/0", "-1/3", "1/-3", "a/3", "1/3x", "1//3", " 1/3",
                          "1/65537", "1/999999999999"}) {
    auto r = ParseShard(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "'";
    EXPECT_NE(r.status().message().find("--shard must be K/N"), std::string::npos) << r.status().message();
  }
}

// Every id is in exactly one of the N shards, the shards are about equal, and the split is a
// pure function of the id (the same on every machine and run).
TEST(Shard, EveryCustomerIsInExactlyOneShardAndTheShardsAreEven) {
  const int n = 3, ids = 30000;
  std::vector<int> count(n, 0);
  for (int i = 0; i < ids; ++i) {
    const std::string id = "C" + std::to_string(1000000 + i);
    int holders = 0;
    for (int k = 1; k <= n; ++k) {
      const Shard s{k, n};
      if (s.Holds(id)) {
        ++holders;
        ++count[k - 1];
      }
      EXPECT_EQ(s.Holds(id), (Shard{k, n}.Holds(id)));
    }
    ASSERT_EQ(holders, 1) << id;
    EXPECT_TRUE(Shard{}.Holds(id));
  }
  // Chi-square with 2 degrees of freedom: 13.8 is its 0.999 quantile.
  double chi2 = 0;
  for (int c : count) chi2 += (c - ids / 3.0) * (c - ids / 3.0) / (ids / 3.0);
  EXPECT_LT(chi2, 13.8) << count[0] << " " << count[1] << " " << count[2];
}

}  // namespace
}  // namespace qm::push
