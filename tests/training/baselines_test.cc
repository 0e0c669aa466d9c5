#include "qianmian/training/baselines.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace qm::training {
namespace {

using metrics::EvalTargets;
using metrics::IndexLists;
using metrics::IndexSpan;
using metrics::kNoIndex;
using Ids = std::vector<uint32_t>;

// An event log where customer c clicked every item of rows[c] (all training).
EventLog Clicks(const std::vector<Ids>& rows) {
  EventLog log;
  TimeMs t = 0;
  for (uint32_t c = 0; c < rows.size(); ++c) {
    for (uint32_t item : rows[c]) log.Append(++t, c, item, EventType::kClick, kAppHome, "");
  }
  return log;
}

Interactions Build(const std::vector<Ids>& rows, uint32_t num_items) {
  auto data = BuildInteractions(Clicks(rows), nullptr, static_cast<uint32_t>(rows.size()), num_items);
  QM_CHECK(data.ok());
  return std::move(data).value();
}

Ids ToIds(IndexSpan s) { return Ids(s.begin(), s.end()); }

// Top-k of one customer.
Ids Top(const Recommender& r, uint32_t customer, int k, Ids exclude = {}, std::vector<float>* scores = nullptr) {
  IndexLists ex;
  ex.Append(exclude);
  Ids out(static_cast<size_t>(k));
  std::vector<float> sc(static_cast<size_t>(k));
  Status st = r.Recommend(&customer, 1, k, &ex, out.data(), sc.data());
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (scores != nullptr) *scores = sc;
  return out;
}

// ---- Interactions ----

TEST(Interactions, KeepTrainingPositivesOnlyAsDistinctSortedItems) {
  EventLog log;
  log.Append(1, 0, 2, EventType::kClick, kAppHome, "");
  log.Append(2, 0, 2, EventType::kConvert, kAppHome, "");     // same item again
  log.Append(3, 0, 1, EventType::kImpression, kAppHome, "");  // not a positive
  log.Append(4, 1, 0, EventType::kPushOpen, kWechatPush, "");
  log.Append(5, 1, 1, EventType::kClick, kAppHome, "");  // held out below
  const Split split = TimeSplit(log, 5);
  auto data = BuildInteractions(log, &split, 3, 3);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(data->items.size(), 3u);
  EXPECT_EQ(ToIds(data->items[0]), (Ids{2}));
  EXPECT_EQ(ToIds(data->items[1]), (Ids{0}));
  EXPECT_EQ(ToIds(data->items[2]), (Ids{}));
  EXPECT_EQ(data->item_positives, (std::vector<uint64_t>{1, 0, 2}));

  InteractionOptions push_only;
  push_only.channel = kWechatPush;
  auto push = BuildInteractions(log, &split, 3, 3, push_only);
  ASSERT_TRUE(push.ok());
  EXPECT_EQ(push->item_positives, (std::vector<uint64_t>{1, 0, 0}));
  EXPECT_EQ(push->num_positives, 1u);
}

TEST(Interactions, RejectIndexesOutsideTheMatrix) {
  EventLog log;
  log.Append(1, 5, 0, EventType::kClick, kAppHome, "");
  EXPECT_EQ(BuildInteractions(log, nullptr, 2, 2).status().code(), StatusCode::kInvalidArgument);
}

// ---- Popularity ----

TEST(Popularity, RanksItemsByTrainingPositivesAndSkipsExcludedOnes) {
  // Item 2 liked by 3 customers, item 0 by 2, item 1 by 1, item 3 by none.
  const Interactions data = Build({{0, 2}, {0, 2}, {1, 2}}, 4);
  auto pop = FitPopularity(data);
  ASSERT_TRUE(pop.ok());
  std::vector<float> scores;
  EXPECT_EQ(Top(**pop, 0, 3, {}, &scores), (Ids{2, 0, 1}));
  EXPECT_EQ(scores, (std::vector<float>{3, 2, 1}));
  EXPECT_EQ(Top(**pop, 0, 3, {2}), (Ids{0, 1, 3}));
  // More slots than candidates: padded.
  EXPECT_EQ(Top(**pop, 0, 4, {0, 2}), (Ids{1, 3, kNoIndex, kNoIndex}));
}

TEST(Popularity, RecommendsOnlyAllowedItems) {
  const Interactions data = Build({{0, 2}, {0, 2}, {1, 2}}, 4);
  PopularityOptions options;
  options.allowed_items = {1, 1, 0, 0};  // e.g. ItemsOfKind(data, ItemKind::kProduct)
  auto pop = FitPopularity(data, options);
  ASSERT_TRUE(pop.ok());
  EXPECT_EQ(Top(**pop, 0, 3), (Ids{0, 1, kNoIndex}));
  options.allowed_items = {1};
  EXPECT_EQ(FitPopularity(data, options).status().code(), StatusCode::kInvalidArgument);
}

TEST(Recommender, RejectsKBelowOneAndAnExclusionListPerCustomerMismatch) {
  const Interactions data = Build({{0}}, 2);
  auto pop = FitPopularity(data);
  ASSERT_TRUE(pop.ok());
  uint32_t customer = 0, item = 0;
  EXPECT_EQ((*pop)->Recommend(&customer, 1, 0, nullptr, &item, nullptr).code(), StatusCode::kInvalidArgument);
  IndexLists two;
  two.Append(Ids{});
  two.Append(Ids{});
  EXPECT_EQ((*pop)->Recommend(&customer, 1, 1, &two, &item, nullptr).code(), StatusCode::kInvalidArgument);
}

// ---- Item-kNN ----

// c0 {0,1}, c1 {0,1,2}, c2 {2,3}: |C| = 2, 2, 2, 1.
// sim(0,1) = 2/2 = 1; sim(0,2) = sim(1,2) = 1/2; sim(2,3) = 1/sqrt(2); others 0.
TEST(ItemKnn, NeighboursAreTheMostCosineSimilarItems) {
  const Interactions data = Build({{0, 1}, {0, 1, 2}, {2, 3}}, 5);
  auto nb = ComputeItemNeighbours(data, 2);
  ASSERT_TRUE(nb.ok());
  ASSERT_EQ(nb->neighbours.size(), 5u);
  EXPECT_EQ(ToIds(nb->neighbours[0]), (Ids{1, 2}));
  EXPECT_EQ(ToIds(nb->neighbours[2]), (Ids{3, 0}));  // 0.707, then 0.5 (tie with 1 by index)
  EXPECT_EQ(ToIds(nb->neighbours[3]), (Ids{2}));
  EXPECT_EQ(ToIds(nb->neighbours[4]), (Ids{}));  // nobody liked item 4
  const uint64_t o2 = nb->neighbours.offsets[2];
  EXPECT_NEAR(nb->similarity[o2], 1 / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(nb->similarity[o2 + 1], 0.5, 1e-6);
  EXPECT_NEAR(nb->similarity[nb->neighbours.offsets[0]], 1.0, 1e-6);
  EXPECT_EQ(ComputeItemNeighbours(data, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(ItemKnn, ScoresSumSimilaritiesToTheCustomersHistory) {
  // Customer 3 liked item 0 and item 3.
  const Interactions data = Build({{0, 1}, {0, 1, 2}, {2, 3}, {0, 3}}, 5);
  ItemKnnOptions options;
  options.neighbours = 10;
  auto knn = FitItemKnn(data, options);
  ASSERT_TRUE(knn.ok());
  // With c3 added: |C| = 3, 2, 2, 2. sim(0,1) = 2/sqrt(6), sim(0,2) = 1/sqrt(6),
  // sim(3,2) = 1/2, sim(3,0) = 1/sqrt(6), sim(3,1) = 0.
  std::vector<float> scores;
  const Ids top = Top(**knn, 3, 3, {0, 3}, &scores);
  EXPECT_EQ(top, (Ids{2, 1, 4}));
  EXPECT_NEAR(scores[0], 1 / std::sqrt(6.0) + 0.5, 1e-6);
  EXPECT_NEAR(scores[1], 2 / std::sqrt(6.0), 1e-6);
  EXPECT_NEAR(scores[2], 0.0, 1e-6);
}

// ---- EASE ----

TEST(Ease, WithTwoItemsIsTheRidgeRegressionCoefficient) {
  // Columns x0 = (1,1,1), x1 = (1,0,0): G = [[3,1],[1,1]]. B(0,1) = G01 / (G00 + λ),
  // B(1,0) = G01 / (G11 + λ): regressing one item's column on the other's.
  const Interactions data = Build({{0, 1}, {0}, {0}}, 2);
  EaseOptions options;
  options.lambda = 0.0;
  auto b = ComputeEaseWeights(data, options);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_NEAR((*b)[0 * 2 + 1], 1.0 / 3, 1e-6);
  EXPECT_NEAR((*b)[1 * 2 + 0], 1.0, 1e-6);
  EXPECT_EQ((*b)[0], 0.0f);
  EXPECT_EQ((*b)[3], 0.0f);
  options.lambda = 2.0;
  b = ComputeEaseWeights(data, options);
  ASSERT_TRUE(b.ok());
  EXPECT_NEAR((*b)[0 * 2 + 1], 1.0 / 5, 1e-6);
  EXPECT_NEAR((*b)[1 * 2 + 0], 1.0 / 3, 1e-6);
}

TEST(Ease, WithLambdaNearZeroSolvesEachItemsLeastSquaresRegression) {
  const std::vector<Ids> rows = {{0, 1, 2}, {0, 1}, {1, 2, 3}, {0, 3}, {2, 3}, {0}, {1, 3}, {0, 2}, {3}, {1}};
  const uint32_t n = 4;
  const Interactions data = Build(rows, n);
  EaseOptions options;
  options.lambda = 1e-9;
  auto b = ComputeEaseWeights(data, options);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  double g[4][4] = {};
  for (const Ids& r : rows) {
    for (uint32_t i : r) {
      for (uint32_t j : r) g[i][j] += 1;
    }
  }
  // Normal equations of regressing column j on the other columns: for every i != j,
  // Σ_{k != j} G(i,k) B(k,j) = G(i,j).
  for (uint32_t j = 0; j < n; ++j) {
    EXPECT_EQ((*b)[j * n + j], 0.0f);
    for (uint32_t i = 0; i < n; ++i) {
      if (i == j) continue;
      double lhs = 0;
      for (uint32_t k = 0; k < n; ++k) {
        if (k != j) lhs += g[i][k] * (*b)[k * n + j];
      }
      EXPECT_NEAR(lhs, g[i][j], 1e-4) << "item " << j << ", equation " << i;
    }
  }
}

TEST(Ease, RecommendsTheItemThatCoOccursWithTheHistory) {
  // Items 0 and 1 always go together; 2 and 3 go together. A customer with 0 should get 1.
  const Interactions data = Build({{0, 1}, {0, 1}, {0, 1}, {2, 3}, {2, 3}, {0}, {2}}, 4);
  EaseOptions options;
  options.lambda = 1.0;
  auto ease = FitEase(data, options);
  ASSERT_TRUE(ease.ok()) << ease.status().ToString();
  EXPECT_EQ(Top(**ease, 5, 1, {0}), (Ids{1}));
  EXPECT_EQ(Top(**ease, 6, 1, {2}), (Ids{3}));
  // A customer the fit never saw gets a ranking by popularity (all scores 0), not an error:
  // item 0 has 4 positives, items 1 and 2 have 3 each (tie broken by index).
  EXPECT_EQ(Top(**ease, 1000, 2), (Ids{0, 1}));
}

TEST(Ease, RefusesMoreItemsThanTheDenseLimitNamingTheLimit) {
  const Interactions data = Build({{0, 1, 2}}, 3);
  EaseOptions options;
  options.max_items = 2;
  auto ease = FitEase(data, options);
  ASSERT_EQ(ease.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(ease.status().message().find("max_items = 2"), std::string::npos) << ease.status().message();
}

TEST(Ease, CountsOnlyItemsWithPositivesAgainstTheLimit) {
  const Interactions data = Build({{0, 7}}, 10);  // 8 idle items
  EaseOptions options;
  options.max_items = 2;
  EXPECT_TRUE(FitEase(data, options).ok());
}

TEST(EvaluateRecommender, ExcludesSeenItemsAndScoresAgainstTargets) {
  // Training: c0 {0}, c1 {0, 1}; held out: c0 clicks 1 (target), c1 clicks 2 (target).
  EventLog log;
  log.Append(1, 0, 0, EventType::kClick, kAppHome, "");
  log.Append(2, 1, 0, EventType::kClick, kAppHome, "");
  log.Append(3, 1, 1, EventType::kClick, kAppHome, "");
  log.Append(10, 0, 1, EventType::kClick, kAppHome, "");
  log.Append(11, 1, 2, EventType::kClick, kAppHome, "");
  const Split split = TimeSplit(log, 10);
  auto data = BuildInteractions(log, &split, 2, 3);
  ASSERT_TRUE(data.ok());
  auto pop = FitPopularity(*data);
  ASSERT_TRUE(pop.ok());
  auto eval = EvaluateRecommender(**pop, BuildEvalTargets(log, split), {1, 2});
  ASSERT_TRUE(eval.ok()) << eval.status().ToString();
  // Popularity 0 > 1 > 2. c0 (seen 0) gets [1, 2]: hit at 1. c1 (seen 0, 1) gets [2]: hit.
  EXPECT_EQ(eval->ranking.users(), 2);
  EXPECT_DOUBLE_EQ(eval->ranking.Recall(1), 1.0);
  EXPECT_EQ(eval->coverage, (std::vector<double>{2.0 / 3, 2.0 / 3}));
}

// ---- MovieLens-100k quality check ----

// u.data as an event log: every rating is a click (implicit feedback), users and items 0-based.
bool LoadMovieLens(const std::string& path, EventLog* log, uint32_t* users, uint32_t* items) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  *users = *items = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    uint32_t u = 0, i = 0, rating = 0;
    int64_t ts = 0;
    if (!(fields >> u >> i >> rating >> ts) || u == 0 || i == 0) continue;
    log->Append(ts * 1000, u - 1, i - 1, EventType::kClick, kAppHome, "");
    *users = std::max(*users, u);
    *items = std::max(*items, i);
  }
  return log->size() > 0;
}

TEST(MovieLens100k, EaseBeatsItemKnnBeatsPopularityOnAPerUserTimeSplit) {
  const std::string path = std::string(QM_SHARED_DATA_DIR) + "/ml-100k/u.data";
  EventLog log;
  uint32_t users = 0, items = 0;
  if (!LoadMovieLens(path, &log, &users, &items)) GTEST_SKIP() << "no " << path;
  auto split = PerCustomerTimeSplit(log, 0.2);
  ASSERT_TRUE(split.ok());
  const EvalTargets targets = BuildEvalTargets(log, *split);
  auto data = BuildInteractions(log, &*split, users, items);
  ASSERT_TRUE(data.ok());

  struct Row {
    std::string name;
    double recall20, ndcg20, recall10, recall50, coverage20, seconds;
  };
  std::vector<Row> rows;
  auto run = [&](Result<std::unique_ptr<Recommender>> fitted, double fit_seconds) {
    ASSERT_TRUE(fitted.ok()) << fitted.status().ToString();
    const auto t0 = std::chrono::steady_clock::now();
    auto eval = EvaluateRecommender(**fitted, targets, {10, 20, 50});
    ASSERT_TRUE(eval.ok()) << eval.status().ToString();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rows.push_back({(*fitted)->name(), eval->ranking.Recall(20), eval->ranking.Ndcg(20), eval->ranking.Recall(10),
                    eval->ranking.Recall(50), eval->coverage[1], fit_seconds + s});
  };
  auto timed = [](auto fit) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fit();
    return std::make_pair(std::move(r), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  {
    auto [r, s] = timed([&] { return FitPopularity(*data); });
    run(std::move(r), s);
  }
  {
    auto [r, s] = timed([&] { return FitItemKnn(*data); });
    run(std::move(r), s);
  }
  {
    auto [r, s] = timed([&] { return FitEase(*data); });
    run(std::move(r), s);
  }
  ASSERT_EQ(rows.size(), 3u);
  std::printf(
      "MovieLens-100k, per-user 80/20 time split: %zu users evaluated, %zu targets, "
      "%u users x %u items, %zu training events\n",
      targets.size(), targets.num_targets(), users, items, split->num_train);
  std::printf("%-12s %9s %9s %9s %9s %11s %8s\n", "model", "Recall@10", "Recall@20", "NDCG@20", "Recall@50",
              "Coverage@20", "seconds");
  for (const Row& r : rows) {
    std::printf("%-12s %9.4f %9.4f %9.4f %9.4f %11.4f %8.2f\n", r.name.c_str(), r.recall10, r.recall20, r.ndcg20,
                r.recall50, r.coverage20, r.seconds);
    RecordProperty(r.name + "_recall20", std::to_string(r.recall20));
    RecordProperty(r.name + "_ndcg20", std::to_string(r.ndcg20));
  }
  const Row& pop = rows[0];
  const Row& knn = rows[1];
  const Row& ease = rows[2];
  EXPECT_GT(ease.recall20, knn.recall20);
  EXPECT_GT(knn.recall20, pop.recall20);
  EXPECT_GT(ease.ndcg20, pop.ndcg20);
}

}  // namespace
}  // namespace qm::training
