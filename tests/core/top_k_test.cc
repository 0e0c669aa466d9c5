#include "qianmian/core/top_k.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

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

// PushAll's block-skipping scan keeps exactly what pushing every score in order keeps: for
// streams of every length mod 4, k from 0 to past n, many ties (scores on a coarse grid), and
// streams that rise (every block has a score above the threshold) or fall (none after the first k).
TEST(TopK, PushAllKeepsWhatPushingEachScoreInOrderKeeps) {
  std::mt19937 rng(5);
  int checked = 0;
  for (int shape = 0; shape < 3; ++shape) {
    for (int64_t n : {0, 1, 3, 4, 5, 8, 63, 64, 65, 1001}) {
      for (int64_t k : {0, 1, 3, 4, 16, 2000}) {
        std::vector<float> s(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) {
          const float grid = static_cast<float>(rng() % 50) / 10.0f;  // ties
          s[static_cast<size_t>(j)] = shape == 0 ? grid : shape == 1 ? j * 0.01f + grid * 0.001f : -j * 0.01f;
        }
        TopK<int64_t> one(k), all(k);
        for (int64_t j = 0; j < n; ++j) one.Push(s[static_cast<size_t>(j)], 1000 + j);
        all.PushAll(s.data(), n, [](int64_t j) { return 1000 + j; });
        ASSERT_EQ(all.SortBestFirst(), one.SortBestFirst()) << "shape " << shape << ", n " << n << ", k " << k;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 180);
}

}  // namespace
}  // namespace qm
