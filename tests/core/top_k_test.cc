#include "qianmian/core/top_k.h"

#include <gtest/gtest.h>

namespace qm {
namespace {

TEST(TopK, KeepsTheKBestBestFirstAndBreaksTiesBySmallerLabel) {
  TopK<int> top(3);
  for (auto [score, label] :
       std::vector<std::pair<float, int>>{{0.5f, 7}, {0.9f, 1}, {0.5f, 3}, {0.1f, 9}, {0.7f, 4}}) {
    top.Push(score, label);
  }
  const auto& best = top.SortBestFirst();
  ASSERT_EQ(best.size(), 3u);
  EXPECT_EQ(best[0], std::make_pair(0.9f, 1));
  EXPECT_EQ(best[1], std::make_pair(0.7f, 4));
  EXPECT_EQ(best[2], std::make_pair(0.5f, 3));  // of the two 0.5s the smaller label
}

TEST(TopK, KeepsFewerThanKAndNothingForKZero) {
  TopK<int> top(5);
  top.Push(1.0f, 2);
  top.Push(2.0f, 1);
  EXPECT_EQ(top.SortBestFirst().size(), 2u);
  top.Reset(0);
  top.Push(3.0f, 3);
  EXPECT_TRUE(top.SortBestFirst().empty());
}

}  // namespace
}  // namespace qm
