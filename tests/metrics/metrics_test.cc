#include "qianmian/metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace qm::metrics {
namespace {

using Ids = std::vector<uint32_t>;

// ---- Recall / hits ----

TEST(Recall, CountsOnlyTargetsInTheTopK) {
  const Ids ranked = {5, 3, 7, 1, 9};
  const Ids targets = {3, 9, 4};
  EXPECT_EQ(HitsAtK(ranked, targets, 3), 1);
  EXPECT_DOUBLE_EQ(RecallAtK(ranked, targets, 3), 1.0 / 3);
  EXPECT_DOUBLE_EQ(RecallAtK(ranked, targets, 5), 2.0 / 3);
  EXPECT_DOUBLE_EQ(RecallAtK(ranked, targets, 50), 2.0 / 3);  // K beyond the list
}

TEST(Recall, IsZeroWithoutTargets) {
  EXPECT_DOUBLE_EQ(RecallAtK(Ids{1, 2}, Ids{}, 10), 0.0);
  EXPECT_DOUBLE_EQ(NdcgAtK(Ids{1, 2}, Ids{}, 10), 0.0);
}

TEST(Recall, IgnoresEmptySlotsRepeatedItemsAndDuplicateTargets) {
  const Ids ranked = {3, 3, kNoIndex, 4};
  const Ids targets = {4, 3, 3};
  EXPECT_EQ(HitsAtK(ranked, targets, 4), 2);
  EXPECT_DOUBLE_EQ(RecallAtK(ranked, targets, 4), 1.0);
  EXPECT_DOUBLE_EQ(RecallAtK(ranked, targets, 2), 0.5);
}

// ---- NDCG ----

TEST(Ndcg, MatchesAHandComputedValue) {
  // Hits at positions 1 and 3: DCG = 1/log2(3) + 1/log2(5); ideal over 2 targets = 1 + 1/log2(3).
  const double dcg = 1 / std::log2(3.0) + 1 / std::log2(5.0);
  const double idcg = 1 + 1 / std::log2(3.0);
  EXPECT_NEAR(NdcgAtK(Ids{1, 2, 3, 4}, Ids{2, 4}, 4), dcg / idcg, 1e-12);
  EXPECT_NEAR(dcg / idcg, 0.650921, 1e-6);
  // Only the hit at position 1 is in the top 2; the ideal still has 2 hits.
  EXPECT_NEAR(NdcgAtK(Ids{1, 2, 3, 4}, Ids{2, 4}, 2), (1 / std::log2(3.0)) / idcg, 1e-12);
}

TEST(Ndcg, IdealDcgIsOverTheSmallerOfKAndTheTargetCount) {
  // Three targets but K = 2: two hits on top is a perfect score.
  EXPECT_DOUBLE_EQ(NdcgAtK(Ids{1, 2, 9}, Ids{1, 2, 3}, 2), 1.0);
  EXPECT_DOUBLE_EQ(NdcgAtK(Ids{7, 8}, Ids{1}, 2), 0.0);
}

TEST(Ndcg, IsOneForAPerfectRanking) { EXPECT_DOUBLE_EQ(NdcgAtK(Ids{4, 2, 8, 1}, Ids{2, 4}, 10), 1.0); }

// ---- RankingMetrics ----

TEST(RankingMetrics, AveragesOverUsersWithTargetsForEveryK) {
  RankingMetrics m({1, 3});
  m.Add(Ids{1, 2, 3}, Ids{1});     // recall@1 = 1, recall@3 = 1
  m.Add(Ids{4, 5, 6}, Ids{6, 7});  // recall@1 = 0, recall@3 = 1/2
  m.Add(Ids{1, 2, 3}, Ids{});      // no targets: not counted
  EXPECT_EQ(m.users(), 2);
  EXPECT_DOUBLE_EQ(m.Recall(1), 0.5);
  EXPECT_DOUBLE_EQ(m.Recall(3), 0.75);
  const double user2_ndcg3 = (1 / std::log2(4.0)) / (1 + 1 / std::log2(3.0));
  EXPECT_NEAR(m.Ndcg(3), (1.0 + user2_ndcg3) / 2, 1e-12);
  const auto summary = m.Summary();
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].k, 1);
  EXPECT_DOUBLE_EQ(summary[0].hit_rate, 0.5);
  EXPECT_DOUBLE_EQ(summary[1].hit_rate, 1.0);
}

TEST(RankingMetrics, AddBatchScoresEachRowAgainstItsTargets) {
  IndexLists targets;
  targets.Append(Ids{9});  // unused: the batch starts at 1
  targets.Append(Ids{2});
  targets.Append(Ids{5, 6});
  const Ids rows = {2, 3,          // row 0 vs targets[1]: hit
                    6, kNoIndex};  // row 1 vs targets[2]: 1 of 2
  RankingMetrics m({2});
  m.AddBatch(rows.data(), 2, 2, targets, 1);
  EXPECT_EQ(m.users(), 2);
  EXPECT_DOUBLE_EQ(m.Recall(2), (1.0 + 0.5) / 2);
}

TEST(RankingMetrics, MergeCombinesUsersOfBothAccumulators) {
  RankingMetrics a({2}), b({2});
  a.Add(Ids{1, 2}, Ids{1});
  b.Add(Ids{1, 2}, Ids{3});
  a.Merge(b);
  EXPECT_EQ(a.users(), 2);
  EXPECT_DOUBLE_EQ(a.Recall(2), 0.5);
}

TEST(RankingMetrics, ReportsZerosWhenNoUserWasAdded) {
  RankingMetrics m;
  EXPECT_EQ(m.users(), 0);
  EXPECT_DOUBLE_EQ(m.Recall(20), 0.0);
  EXPECT_EQ(m.Summary().size(), 3u);
}

// ---- Coverage ----

TEST(Coverage, IsTheShareOfItemsShownInSomeTopK) {
  const Ids rows = {0, 1, 2, 1, 3, kNoIndex};
  EXPECT_DOUBLE_EQ(CatalogueCoverage(rows.data(), 2, 3, 2, 10), 0.3);  // {0, 1, 3}
  EXPECT_DOUBLE_EQ(CatalogueCoverage(rows.data(), 2, 3, 3, 10), 0.4);  // {0, 1, 2, 3}
  EXPECT_DOUBLE_EQ(CatalogueCoverage(rows.data(), 2, 3, 3, 0), 0.0);
}

// ---- AUC ----

TEST(Auc, IsOneForPerfectSeparationAndZeroForReversed) {
  const std::vector<float> s = {0.1f, 0.2f, 0.8f, 0.9f};
  const std::vector<float> y = {0, 0, 1, 1};
  const std::vector<float> y_rev = {1, 1, 0, 0};
  EXPECT_DOUBLE_EQ(*Auc(s.data(), y.data(), 4), 1.0);
  EXPECT_DOUBLE_EQ(*Auc(s.data(), y_rev.data(), 4), 0.0);
}

TEST(Auc, MatchesAHandComputedValue) {
  // Pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, *) two wins: 3/4.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*Auc(s.data(), y.data(), 4), 0.75);
}

TEST(Auc, CountsTiedPairsAsOneHalf) {
  // Positive 0.5 ties both negatives (2 x 1/2), positive 0.9 beats both: (1 + 2) / 4.
  const std::vector<float> s = {0.5f, 0.5f, 0.5f, 0.9f};
  const std::vector<float> y = {1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(*Auc(s.data(), y.data(), 4), 0.75);
  const std::vector<float> flat = {0.3f, 0.3f, 0.3f, 0.3f};
  EXPECT_DOUBLE_EQ(*Auc(flat.data(), y.data(), 4), 0.5);
}

TEST(Auc, IsOneHalfWhenAClassIsAbsent) {
  const std::vector<float> s = {0.1f, 0.7f};
  const std::vector<float> ones = {1, 1};
  EXPECT_DOUBLE_EQ(*Auc(s.data(), ones.data(), 2), 0.5);
  EXPECT_DOUBLE_EQ(*Auc(nullptr, nullptr, 0), 0.5);
}

TEST(Auc, WeightCountsASampleThatManyTimes) {
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y = {0, 0, 1, 1};
  const std::vector<float> w = {1, 2, 1, 1};
  // Same as duplicating the 0.4 negative: pos 0.35 beats 1 of 3 negatives, 0.8 beats 3: 4/6.
  const std::vector<float> s2 = {0.1f, 0.4f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y2 = {0, 0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*Auc(s.data(), y.data(), 4, w.data()), 4.0 / 6);
  EXPECT_DOUBLE_EQ(*Auc(s2.data(), y2.data(), 5), 4.0 / 6);
}

TEST(Auc, RejectsLabelsOtherThanZeroOrOneAndNonFiniteScores) {
  const std::vector<float> s = {0.1f, 0.2f};
  const std::vector<float> bad_y = {0, 2};
  EXPECT_EQ(Auc(s.data(), bad_y.data(), 2).status().code(), StatusCode::kInvalidArgument);
  const std::vector<float> nan_s = {0.1f, std::nanf("")};
  const std::vector<float> y = {0, 1};
  EXPECT_EQ(Auc(nan_s.data(), y.data(), 2).status().code(), StatusCode::kInvalidArgument);
  const std::vector<float> neg_w = {1, -1};
  EXPECT_EQ(Auc(s.data(), y.data(), 2, neg_w.data()).status().code(), StatusCode::kInvalidArgument);
}

// ---- Group AUC ----

TEST(GroupAuc, SkipsSingleClassGroupsAndWeightsTheRestBySize) {
  // Group 7: the hand-computed 0.75 case (4 samples). Group 3: perfect (2 samples).
  // Group 5: positives only, skipped.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f, 0.2f, 0.9f, 0.3f, 0.6f, 0.1f};
  const std::vector<float> y = {0, 0, 1, 1, 0, 1, 1, 1, 1};
  const std::vector<uint32_t> g = {7, 7, 7, 7, 3, 3, 5, 5, 5};
  int64_t used = -1;
  auto gauc = GroupAuc(s.data(), y.data(), g.data(), s.size(), nullptr, &used);
  ASSERT_TRUE(gauc.ok()) << gauc.status().ToString();
  EXPECT_DOUBLE_EQ(*gauc, (4 * 0.75 + 2 * 1.0) / 6);
  EXPECT_EQ(used, 2);
}

TEST(GroupAuc, IsOneHalfWhenNoGroupHasBothClasses) {
  const std::vector<float> s = {0.1f, 0.4f};
  const std::vector<float> y = {0, 1};
  const std::vector<uint32_t> g = {1, 2};
  int64_t used = -1;
  EXPECT_DOUBLE_EQ(*GroupAuc(s.data(), y.data(), g.data(), 2, nullptr, &used), 0.5);
  EXPECT_EQ(used, 0);
}

TEST(GroupAuc, UsesSampleWeightsAsGroupWeights) {
  const std::vector<float> s = {0.1f, 0.9f, 0.9f, 0.1f};
  const std::vector<float> y = {0, 1, 0, 1};
  const std::vector<uint32_t> g = {1, 1, 2, 2};
  const std::vector<float> w = {3, 3, 1, 1};  // group 1 (AUC 1) weighs 6, group 2 (AUC 0) 2
  EXPECT_DOUBLE_EQ(*GroupAuc(s.data(), y.data(), g.data(), 4, w.data()), 6.0 / 8);
}

// ---- Log loss ----

TEST(LogLoss, MatchesAHandComputedValue) {
  const std::vector<float> p = {0.9f, 0.2f};
  const std::vector<float> y = {1, 0};
  EXPECT_NEAR(*LogLoss(p.data(), y.data(), 2), -(std::log(0.9) + std::log(0.8)) / 2, 1e-6);
  const std::vector<float> w = {3, 1};
  EXPECT_NEAR(*LogLoss(p.data(), y.data(), 2, w.data()), -(3 * std::log(0.9) + std::log(0.8)) / 4, 1e-6);
}

TEST(LogLoss, ClipsCertainWrongPredictionsToAFiniteLoss) {
  const std::vector<float> p = {0.0f, 1.0f};
  const std::vector<float> y = {1, 0};
  auto loss = LogLoss(p.data(), y.data(), 2);
  ASSERT_TRUE(loss.ok());
  EXPECT_NEAR(*loss, -std::log(1e-7), 1e-3);
}

TEST(LogLoss, RejectsProbabilitiesOutsideTheUnitIntervalAndEmptyInput) {
  const std::vector<float> p = {1.5f};
  const std::vector<float> y = {1};
  EXPECT_EQ(LogLoss(p.data(), y.data(), 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LogLoss(nullptr, nullptr, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qm::metrics
