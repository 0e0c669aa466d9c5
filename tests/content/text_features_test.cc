#include "qianmian/content/text_features.h"

#include <gtest/gtest.h>
#include <algorithm>

namespace qm::content {
namespace {

TEST(Utf8CodePoints, SplitsChineseAndAsciiIntoCodePoints) {
  auto cps = Utf8CodePoints("理财a1");
  ASSERT_EQ(cps.size(), 4u);
  EXPECT_EQ(cps[0], "理");
  EXPECT_EQ(cps[1], "财");
  EXPECT_EQ(cps[2], "a");
}

TEST(Utf8CodePoints, TreatsInvalidBytesAsSingleCodePoints) {
  auto cps = Utf8CodePoints(std::string_view("\xE7\x90x", 3));
  EXPECT_EQ(cps.size(), 3u);
}

TEST(HashedNgrams, ProducesUnigramsBigramsAndTrigramsInRange) {
  TextFeatureOptions opt;
  opt.buckets = 1000;
  std::vector<uint32_t> ids;
  HashedNgrams("稳健理财", opt, &ids);
  EXPECT_EQ(ids.size(), 4u + 3u + 2u);
  for (auto id : ids) EXPECT_LT(id, 1000u);
}

TEST(HashedNgrams, SharesFeaturesBetweenRelatedTitles) {
  TextFeatureOptions opt;
  std::vector<uint32_t> a, b, c;
  HashedNgrams("养老理财规划", opt, &a);
  HashedNgrams("理财规划入门", opt, &b);
  HashedNgrams("信用卡还款", opt, &c);
  auto overlap = [](std::vector<uint32_t> x, std::vector<uint32_t> y) {
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    std::vector<uint32_t> out;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(out));
    return out.size();
  };
  EXPECT_GE(overlap(a, b), 5u);  // 理 财 规 划 理财 财规 规划 理财规 财规划
  EXPECT_EQ(overlap(a, c), 0u);
}

TEST(HashedNgrams, DoesNotCrossPunctuationAndFoldsAsciiCase) {
  TextFeatureOptions opt;
  std::vector<uint32_t> a, b;
  HashedNgrams("ETF，基金", opt, &a);
  HashedNgrams("etf 基金", opt, &b);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace qm::content
