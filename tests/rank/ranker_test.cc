#include "qianmian/rank/ranker.h"
#include "qianmian/rank/two_stage_score.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/serialize.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

namespace qm::rank {
namespace {

// Customers with label "young" click "card" items; others click "deposit" items. Clicks fall
// when the item was shown recently (fatigue in the contact features).
struct World {
  Dataset ds;
  std::unique_ptr<features::FeatureSpace> space;
  World() {
    uint32_t young = ds.labels.Intern("young"), old = ds.labels.Intern("senior");
    uint32_t card = ds.categories.Intern("card"), dep = ds.categories.Intern("deposit");
    for (int i = 0; i < 20; ++i) {
      Item it;
      it.id = "I" + std::to_string(i);
      it.kind = ItemKind::kProduct;
      it.category = i % 2 ? card : dep;
      ds.AddItem(it);
    }
    for (int c = 0; c < 100; ++c) {
      Customer cu;
      cu.id = "C" + std::to_string(c);
      cu.tags = {c % 2 ? young : old};
      ds.AddCustomer(cu);
    }
    // The same split as an attribute column (trees read columns, not label bags).
    FeatureColumn age;
    age.name = "age";
    for (int c = 0; c < 100; ++c) age.numeric.push_back(c % 2 ? 20.0f + c % 13 : 50.0f + c % 17);
    ds.features.push_back(std::move(age));
    space = std::make_unique<features::FeatureSpace>(*features::FeatureSpace::Fit(ds, features::FeatureOptions{}));
  }
};

void MakeBatch(const World& w, const RankInputBuilder& b, std::mt19937* rng, int n, RankBatch* out) {
  features::CustomerBatch cb;
  features::ItemBatch ib;
  std::vector<float> u(b.embedding_dim(), 0.1f), v(b.embedding_dim(), 0.1f);
  float contact[features::kContactFeatures];
  for (int r = 0; r < n; ++r) {
    uint32_t c = (*rng)() % 100, i = (*rng)() % 20;
    cb.Clear();
    ib.Clear();
    w.space->EncodeCustomer(w.ds, c, 0, {}, &cb);
    w.space->EncodeItems(w.ds, &i, 1, &ib);
    bool shown_recently = (*rng)() % 2;
    std::fill(contact, contact + features::kContactFeatures, 0.0f);
    contact[1] = shown_recently ? std::log1p(3.0f) : 0.0f;
    b.Append(cb, 0, ib, 0, u.data(), v.data(), RankContext{}, contact, &out->inputs);
    bool match = (c % 2) == (i % 2);
    float p = match ? (shown_recently ? 0.3f : 0.8f) : 0.05f;
    out->click.push_back(std::bernoulli_distribution(p)(*rng) ? 1.0f : 0.0f);
    out->convert.push_back(out->click.back() > 0 && std::bernoulli_distribution(0.3)(*rng) ? 1.0f : 0.0f);
    out->weight.push_back(1.0f);
  }
}

double Auc(const std::vector<float>& s, const std::vector<float>& y) {
  double pos = 0, neg = 0, wins = 0;
  for (size_t a = 0; a < s.size(); ++a) {
    for (size_t b = 0; b < s.size(); ++b) {
      if (y[a] > 0 && y[b] == 0) wins += s[a] > s[b] ? 1 : s[a] == s[b] ? 0.5 : 0;
    }
    (y[a] > 0 ? pos : neg) += 1;
  }
  return wins / (pos * neg);
}

TEST(Ranker, BuiltinModelLearnsPreferenceAndFatigue) {
  World w;
  RankInputBuilder b(*w.space, 8);
  RankerOptions o;
  o.epochs = 4;
  o.learning_rate = 3e-3f;
  auto ranker = Ranker::CreateBuiltin(*w.space, b, o);
  ASSERT_TRUE(ranker.ok());
  std::mt19937 rng(1);
  std::vector<RankBatch> batches(20);
  for (auto& batch : batches) MakeBatch(w, b, &rng, 256, &batch);
  size_t cursor = 0;
  RankTrainStats stats;
  Status st = (*ranker)->Train(
      [&](RankBatch* out) {
        if (cursor >= batches.size()) return false;
        *out = batches[cursor++];
        return true;
      },
      [&] { cursor = 0; }, nullptr, &stats);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.rows, 4 * 20 * 256);
  std::printf("epoch losses: %f .. %f\n", stats.epoch_loss.front(), stats.epoch_loss.back());
  EXPECT_LT(stats.epoch_loss.back(), stats.epoch_loss.front());
  RankBatch test;
  MakeBatch(w, b, &rng, 1000, &test);
  std::vector<float> pc(1000), pv(1000);
  ASSERT_TRUE((*ranker)->Score(test.inputs, pc.data(), pv.data()).ok());
  const double auc = Auc(pc, test.click);
  std::printf("AUC %f\n", auc);
  EXPECT_GT(auc, 0.8);
  // Calibration: mean prediction near the observed click rate.
  double mean_p = 0, mean_y = 0;
  for (int i = 0; i < 1000; ++i) {
    mean_p += pc[i] / 1000;
    mean_y += test.click[i] / 1000;
  }
  EXPECT_NEAR(mean_p, mean_y, 0.05);
}

TEST(Ranker, BuiltinModelSavesAndLoads) {
  World w;
  RankInputBuilder b(*w.space, 8);
  auto ranker = Ranker::CreateBuiltin(*w.space, b, RankerOptions{});
  ASSERT_TRUE(ranker.ok());
  auto path = (std::filesystem::temp_directory_path() / "qm_ranker_test.pt").string();
  ASSERT_TRUE((*ranker)->Save(path).ok());
  auto loaded = Ranker::LoadBuiltin(path, *w.space, b);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  std::mt19937 rng(2);
  RankBatch batch;
  MakeBatch(w, b, &rng, 10, &batch);
  std::vector<float> a(10), a2(10), c(10), c2(10);
  ASSERT_TRUE((*ranker)->Score(batch.inputs, a.data(), a2.data()).ok());
  ASSERT_TRUE((*loaded)->Score(batch.inputs, c.data(), c2.data()).ok());
  EXPECT_EQ(a, c);
  EXPECT_EQ(a2, c2);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".json");
  // A folder that does not exist: an IoError naming the model, no exception.
  Status bad = (*ranker)->Save("/nonexistent-qm-dir/ranker.pt");
  EXPECT_EQ(bad.code(), StatusCode::kIoError);
  EXPECT_NE(bad.message().find("saving ranker"), std::string::npos) << bad.message();
}

// Without tower features the network reads nothing of u.v and u*v: changing them changes no
// score. The factorisation and that choice survive saving and loading.
TEST(Ranker, WithoutTowerFeaturesIgnoresTheTowerColumnsAndSavesThatChoice) {
  World w;
  RankInputBuilder b(*w.space, 8);
  RankerOptions o;
  o.tower_features = false;
  o.factor_dim = 6;
  auto ranker = Ranker::CreateBuiltin(*w.space, b, o);
  ASSERT_TRUE(ranker.ok());
  std::mt19937 rng(3);
  RankBatch batch;
  MakeBatch(w, b, &rng, 10, &batch);
  RankInputs changed = batch.inputs;
  const int first_tower_column = w.space->customer_dense();
  for (int64_t r = 0; r < changed.n; ++r) {
    for (int k = first_tower_column; k < changed.dense_width - features::kContactFeatures; ++k) {
      changed.dense[r * changed.dense_width + k] += 3.0f;
    }
  }
  std::vector<float> a(10), a2(10), c(10), c2(10);
  ASSERT_TRUE((*ranker)->Score(batch.inputs, a.data(), a2.data()).ok());
  ASSERT_TRUE((*ranker)->Score(changed, c.data(), c2.data()).ok());
  EXPECT_EQ(a, c);
  EXPECT_EQ(a2, c2);
  auto path = (std::filesystem::temp_directory_path() / "qm_ranker_notower_test.pt").string();
  ASSERT_TRUE((*ranker)->Save(path).ok());
  auto loaded = Ranker::LoadBuiltin(path, *w.space, b);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE((*loaded)->Score(changed, c.data(), c2.data()).ok());
  EXPECT_EQ(a, c);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".json");
}

// Trains `ranker` on `batches` (one pass per epoch).
RankTrainStats TrainOnBatches(Ranker* ranker, const std::vector<RankBatch>& batches) {
  size_t cursor = 0;
  RankTrainStats stats;
  Status st = ranker->Train(
      [&](RankBatch* out) {
        if (cursor >= batches.size()) return false;
        *out = batches[cursor++];
        return true;
      },
      [&] { cursor = 0; }, nullptr, &stats);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return stats;
}

// Trains `ranker` on 20 batches of 256 rows (one pass per epoch).
RankTrainStats TrainOn(const World& w, const RankInputBuilder& b, Ranker* ranker, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<RankBatch> batches(20);
  for (auto& batch : batches) MakeBatch(w, b, &rng, 256, &batch);
  return TrainOnBatches(ranker, batches);
}

RankerOptions GbdtOptions() {
  RankerOptions o;
  o.kind = RankerKind::kGbdt;
  o.gbdt.trees = 60;
  o.gbdt.threads = 1;
  return o;
}

TEST(GbdtRanker, LearnsPreferenceAndFatigueFromColumns) {
  World w;
  RankInputBuilder b(*w.space, 8);
  auto ranker = Ranker::CreateBuiltin(*w.space, b, GbdtOptions());
  ASSERT_TRUE(ranker.ok()) << ranker.status().ToString();
  EXPECT_EQ((*ranker)->kind(), "gbdt");
  RankTrainStats stats = TrainOn(w, b, ranker->get(), 1);
  EXPECT_EQ(stats.rows, 20 * 256);  // one pass, whatever the epochs
  std::mt19937 rng(7);
  RankBatch test;
  MakeBatch(w, b, &rng, 1000, &test);
  std::vector<float> pc(1000), pv(1000);
  ASSERT_TRUE((*ranker)->Score(test.inputs, pc.data(), pv.data()).ok());
  EXPECT_GT(Auc(pc, test.click), 0.8);
  EXPECT_GT(Auc(pv, test.convert), 0.7);
  double mean_p = 0, mean_y = 0;
  for (int i = 0; i < 1000; ++i) {
    mean_p += pc[i] / 1000;
    mean_y += test.click[i] / 1000;
  }
  EXPECT_NEAR(mean_p, mean_y, 0.05);
  // Fatigue: the same (customer, item) scores lower when the item was shown recently.
  int lower = 0, pairs = 0;
  for (int i = 0; i < 200; ++i) {
    RankBatch two;
    std::mt19937 r2(100 + i);
    MakeBatch(w, b, &r2, 1, &two);
    RankInputs fresh = two.inputs, tired = two.inputs;
    const int at = b.dense_width() - features::kContactFeatures + 1;
    fresh.dense[at] = 0;
    tired.dense[at] = std::log1p(3.0f);
    float a, a2, t, t2;
    ASSERT_TRUE((*ranker)->Score(fresh, &a, &a2).ok());
    ASSERT_TRUE((*ranker)->Score(tired, &t, &t2).ok());
    pairs += 1;
    lower += t < a;
  }
  std::printf("lower when tired: %d of %d\n", lower, pairs);
  EXPECT_GT(lower, pairs / 2);
}

TEST(GbdtRanker, SavesLoadsAndScoresConcurrently) {
  World w;
  RankInputBuilder b(*w.space, 8);
  auto ranker = Ranker::CreateBuiltin(*w.space, b, GbdtOptions());
  ASSERT_TRUE(ranker.ok());
  std::vector<float> none(1), none2(1);
  RankBatch one;
  std::mt19937 rng(3);
  MakeBatch(w, b, &rng, 1, &one);
  EXPECT_EQ((*ranker)->Score(one.inputs, none.data(), none2.data()).code(), StatusCode::kFailedPrecondition);
  TrainOn(w, b, ranker->get(), 2);
  auto path = (std::filesystem::temp_directory_path() / "qm_gbdt_test.pt").string();
  ASSERT_TRUE((*ranker)->Save(path).ok());
  auto loaded = Ranker::LoadBuiltin(path, *w.space, b);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->kind(), "gbdt");
  RankBatch batch;
  MakeBatch(w, b, &rng, 300, &batch);
  std::vector<float> a(300), a2(300), c(300), c2(300);
  ASSERT_TRUE((*ranker)->Score(batch.inputs, a.data(), a2.data()).ok());
  ASSERT_TRUE((*loaded)->Score(batch.inputs, c.data(), c2.data()).ok());
  EXPECT_EQ(a, c);
  EXPECT_EQ(a2, c2);
  // Four threads scoring at once get exactly the serial answer.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<float> x(300), x2(300);
      for (int k = 0; k < 50; ++k) {
        if (!(*loaded)->Score(batch.inputs, x.data(), x2.data()).ok() || x != a || x2 != a2) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  // A damaged file is refused with Corruption, not a crash.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  auto damaged = Ranker::LoadBuiltin(path, *w.space, b);
  EXPECT_EQ(damaged.status().code(), StatusCode::kCorruption) << damaged.status().ToString();
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".json");
}

TEST(GbdtRanker, RefusesBadOptions) {
  World w;
  RankInputBuilder b(*w.space, 8);
  RankerOptions o = GbdtOptions();
  o.gbdt.depth = 0;
  EXPECT_EQ(Ranker::CreateBuiltin(*w.space, b, o).status().code(), StatusCode::kInvalidArgument);
  o = GbdtOptions();
  o.gbdt.learning_rate = 0;
  EXPECT_EQ(Ranker::CreateBuiltin(*w.space, b, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRankerKind("forest").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseRankerKind("gbdt"), RankerKind::kGbdt);
}

// Rows where each item's appeal to "young" customers is its own (a pattern unrelated to its
// category), item 19 never shown; every row is scored by the logloss of its true P(click).
void MakeIdiosyncraticBatch(const World& w, const RankInputBuilder& b, std::mt19937* rng, int n, RankBatch* out) {
  static constexpr int kLikedByYoung[19] = {1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1};
  features::CustomerBatch cb;
  features::ItemBatch ib;
  std::vector<float> u(b.embedding_dim(), 0.1f), v(b.embedding_dim(), 0.1f);
  float contact[features::kContactFeatures] = {};
  for (int r = 0; r < n; ++r) {
    uint32_t c = (*rng)() % 100, i = (*rng)() % 19;
    cb.Clear();
    ib.Clear();
    w.space->EncodeCustomer(w.ds, c, 0, {}, &cb);
    w.space->EncodeItems(w.ds, &i, 1, &ib);
    b.Append(cb, 0, ib, 0, u.data(), v.data(), RankContext{}, contact, &out->inputs);
    const bool young = c % 2 == 1;
    const float p = young == (kLikedByYoung[i] == 1) ? 0.6f : 0.1f;
    out->click.push_back(std::bernoulli_distribution(p)(*rng) ? 1.0f : 0.0f);
    out->convert.push_back(0.0f);
    out->weight.push_back(1.0f);
  }
}

// The refit of the items' own factors (item_refit_l2): an item never shown gets a zero own
// factor (what its attributes imply), and on items whose appeal is their own, the refitted model
// predicts new rows at least as well as the one trained under the per-row penalty alone.
TEST(Ranker, RefitOfTheItemsOwnFactorsZeroesUnseenItemsAndFitsWhatAttributesMiss) {
  World w;
  RankInputBuilder b(*w.space, 8);
  std::mt19937 data_rng(5);
  std::vector<RankBatch> batches(16);
  for (auto& batch : batches) MakeIdiosyncraticBatch(w, b, &data_rng, 256, &batch);
  RankBatch test;
  MakeIdiosyncraticBatch(w, b, &data_rng, 4000, &test);
  auto train = [&](float refit_l2, const std::string& path) {
    RankerOptions o;
    o.tower_features = false;
    o.factor_dim = 8;
    o.epochs = 2;
    o.item_refit_l2 = refit_l2;
    auto ranker = Ranker::CreateBuiltin(*w.space, b, o);
    EXPECT_TRUE(ranker.ok());
    TrainOnBatches(ranker->get(), batches);
    EXPECT_TRUE((*ranker)->Save(path).ok());
    std::vector<float> pc(test.inputs.n), pv(test.inputs.n);
    EXPECT_TRUE((*ranker)->Score(test.inputs, pc.data(), pv.data()).ok());
    double loss = 0;
    for (int64_t r = 0; r < test.inputs.n; ++r) {
      const double p = std::clamp(static_cast<double>(pc[r]), 1e-6, 1 - 1e-6);
      loss -= test.click[r] > 0 ? std::log(p) : std::log(1 - p);
    }
    return loss / static_cast<double>(test.inputs.n);
  };
  const auto dir = std::filesystem::temp_directory_path();
  const std::string plain = (dir / "qm_ranker_norefit.pt").string(), refit = (dir / "qm_ranker_refit.pt").string();
  const double loss_plain = train(0.0f, plain), loss_refit = train(RankerOptions{}.item_refit_l2, refit);
  std::printf("held-out logloss: per-row penalty only %.4f, refitted %.4f\n", loss_plain, loss_refit);
  EXPECT_LT(loss_refit, loss_plain + 0.002);
  auto own_factors = [](const std::string& path) {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::serialize::InputArchive table;
    archive.read("fm_item", table);
    torch::Tensor t;
    table.read("weight", t);
    return t;
  };
  const int unseen = static_cast<int>(w.space->ItemVocabId("I19"));
  auto before = own_factors(plain), after = own_factors(refit);
  EXPECT_GT(before[unseen].abs().sum().item<float>(), 0.0f);  // its random initial factor
  EXPECT_EQ(after[unseen].abs().sum().item<float>(), 0.0f);
  const int seen = static_cast<int>(w.space->ItemVocabId("I3"));
  EXPECT_GT(after[seen].abs().sum().item<float>(), 0.0f);
  for (const auto& p : {plain, refit}) {
    std::filesystem::remove(p);
    std::filesystem::remove(p + ".json");
  }
}

// One customer's candidates (one request) take a shortcut through the network: its result must
// equal scoring each row alone, before and after training changes the weights.
TEST(Ranker, ScoresOneRequestsCandidatesExactlyAsRowByRow) {
  World w;
  RankInputBuilder b(*w.space, 8);
  RankerOptions o;
  o.epochs = 1;
  auto ranker = Ranker::CreateBuiltin(*w.space, b, o);
  ASSERT_TRUE(ranker.ok());
  std::mt19937 rng(5);
  auto compare = [&](const char* when) {
    for (int customers : {1, 2}) {
      features::CustomerBatch cb;
      features::ItemBatch ib;
      for (int c = 0; c < customers; ++c) w.space->EncodeCustomer(w.ds, static_cast<uint32_t>(7 + c), 0, {}, &cb);
      std::vector<uint32_t> items(20);
      for (uint32_t i = 0; i < 20; ++i) items[i] = i;
      w.space->EncodeItems(w.ds, items.data(), 20, &ib);
      RankInputs all;
      std::vector<RankInputs> single(60);
      std::normal_distribution<float> g(0, 1);
      for (int r = 0; r < 60; ++r) {
        std::vector<float> u(8), v(8);
        for (auto& x : u) x = g(rng);
        for (auto& x : v) x = g(rng);
        float contact[features::kContactFeatures];
        for (auto& x : contact) x = std::abs(g(rng));
        const RankContext ctx{kWechatPush, 20, 5};
        b.Append(cb, r % customers, ib, r % 20, u.data(), v.data(), ctx, contact, &all);
        b.Append(cb, r % customers, ib, r % 20, u.data(), v.data(), ctx, contact, &single[r]);
      }
      std::vector<float> pc(60), pv(60);
      ASSERT_TRUE((*ranker)->Score(all, pc.data(), pv.data()).ok());
      for (int r = 0; r < 60; ++r) {
        float c1, v1;
        ASSERT_TRUE((*ranker)->Score(single[r], &c1, &v1).ok());
        EXPECT_NEAR(pc[r], c1, 1e-5) << when << ", " << customers << " customer(s), row " << r;
        EXPECT_NEAR(pv[r], v1, 1e-5) << when << ", " << customers << " customer(s), row " << r;
      }
    }
  };
  compare("untrained");
  std::vector<RankBatch> batches(3);
  for (auto& batch : batches) MakeBatch(w, b, &rng, 128, &batch);
  size_t cursor = 0;
  ASSERT_TRUE((*ranker)
                  ->Train(
                      [&](RankBatch* out) {
                        if (cursor >= batches.size()) return false;
                        *out = batches[cursor++];
                        return true;
                      },
                      [&] { cursor = 0; }, nullptr, nullptr)
                  .ok());
  compare("trained");
}

// n rows with every column's ids drawn over its whole vocabulary and normal dense values;
// rows cycle through `customers` customer-and-context prefixes. With `customer_dense` > 0 and
// `labels` > 0 (the feature space's customer_dense() and label_vocab()), each customer's first
// `customer_dense` dense columns and the labels in its bag are the same on all its rows, as in
// a request (its tags still vary); otherwise every row's dense values and bag are drawn anew.
RankInputs RandomRows(const RankInputBuilder& b, int n, int customers, std::mt19937* rng, int customer_dense = 0,
                      int labels = 0) {
  const auto vocab = b.CatVocab();
  const int prefix = b.cat_width() - features::FeatureSpace::kItemCatFields;  // customer fields + context
  std::vector<std::vector<int64_t>> cats(customers, std::vector<int64_t>(b.cat_width()));
  for (auto& c : cats) {
    for (int k = 0; k < b.cat_width(); ++k) c[k] = static_cast<int64_t>((*rng)() % vocab[k]);
  }
  std::normal_distribution<float> g(0, 1);
  RankInputs in;
  in.n = n;
  in.cat_width = b.cat_width();
  in.dense_width = b.dense_width();
  std::vector<std::vector<float>> cust_dense(customers);
  std::vector<std::vector<int64_t>> cust_labels(customers);
  for (int k = 0; k < customers; ++k) {
    for (int j = 0; j < customer_dense; ++j) cust_dense[k].push_back(g(*rng));
    const int m = labels > 1 ? static_cast<int>((*rng)() % 4) : 0;  // 0 to 3 labels
    for (int j = 0; j < m; ++j) cust_labels[k].push_back(1 + static_cast<int64_t>((*rng)() % (labels - 1)));
  }
  for (int r = 0; r < n; ++r) {
    std::vector<int64_t> c = cats[r % customers];
    for (int k = 0; k < b.cat_width(); ++k) {
      const bool item_column = k >= prefix - kContextFields && k < b.cat_width() - kContextFields;
      if (item_column) c[k] = static_cast<int64_t>((*rng)() % vocab[k]);
    }
    in.cat.insert(in.cat.end(), c.begin(), c.end());
    for (int k = 0; k < b.dense_width(); ++k) {
      in.dense.push_back(k < customer_dense ? cust_dense[r % customers][k] : g(*rng));
    }
    if (labels > 0) {  // the customer's labels, then tags, then padding
      const auto& own = cust_labels[r % customers];
      const int tags = b.BagVocab() > labels ? static_cast<int>((*rng)() % (kBagWidth - own.size() + 1)) : 0;
      for (int64_t l : own) in.bag.push_back(l);
      for (int k = 0; k < tags; ++k)
        in.bag.push_back(labels + static_cast<int64_t>((*rng)() % (b.BagVocab() - labels)));
      for (int k = static_cast<int>(own.size()) + tags; k < kBagWidth; ++k) in.bag.push_back(0);
      continue;
    }
    const int filled = static_cast<int>((*rng)() % (kBagWidth + 1));  // 0 (all padding) to full
    for (int k = 0; k < kBagWidth; ++k) in.bag.push_back(k < filled ? 1 + (*rng)() % (b.BagVocab() - 1) : 0);
  }
  return in;
}

// Score runs the inference path (OpenBLAS, no libtorch); it must give libtorch's probabilities
// for every shape of the network, for one request's rows (shared customer part) and for rows of
// several customers, untrained and trained.
TEST(Ranker, InferencePathMatchesLibtorchForEveryShapeOfTheNetwork) {
  World w;
  RankInputBuilder b(*w.space, 8);
  std::mt19937 rng(11);
  struct Variant {
    const char* name;
    std::function<void(RankerOptions*)> set;
  };
  const std::vector<Variant> variants = {
      {"default", [](RankerOptions*) {}},
      {"no tower features", [](RankerOptions* o) { o->tower_features = false; }},
      {"no factorisation", [](RankerOptions* o) { o->factor_dim = 0; }},
      {"no cross layers", [](RankerOptions* o) { o->cross_layers = 0; }},
      {"three cross layers, odd sizes",
       [](RankerOptions* o) {
         o->cross_layers = 3;
         o->cross_rank = 5;
         o->hidden1 = 33;
         o->hidden2 = 7;
         o->field_dim = 5;
         o->factor_dim = 3;
       }},
  };
  auto compare = [&](const Ranker& ranker, const std::string& what) {
    // Rows whose customer part is constant per customer (as requests are: the factorisation's
    // customer side is then summed once), and rows whose dense values and bags all vary.
    for (const bool as_requests : {true, false}) {
      for (int customers : {1, 3}) {
        for (int n : {1, 7, 8, 65, 300}) {
          auto in = as_requests ? RandomRows(b, n, customers, &rng, w.space->customer_dense(), w.space->label_vocab())
                                : RandomRows(b, n, customers, &rng);
          std::vector<float> pc(n), pv(n), rc(n), rv(n);
          ASSERT_TRUE(ranker.Score(in, pc.data(), pv.data()).ok());
          ASSERT_TRUE(ScoreWithLibtorch(ranker, in, rc.data(), rv.data()).ok());
          double worst = 0;
          for (int r = 0; r < n; ++r)
            worst = std::max({worst, std::abs(1.0 * pc[r] - rc[r]), std::abs(1.0 * pv[r] - rv[r])});
          EXPECT_LT(worst, 1e-5) << what << ", " << customers << " customer(s), " << n << " rows"
                                 << (as_requests ? ", customer part constant" : ", every column drawn per row");
        }
      }
    }
  };
  for (const auto& v : variants) {
    RankerOptions o;
    o.epochs = 1;
    v.set(&o);
    auto ranker = Ranker::CreateBuiltin(*w.space, b, o);
    ASSERT_TRUE(ranker.ok()) << v.name;
    compare(**ranker, std::string(v.name) + ", untrained");
    std::vector<RankBatch> batches(3);
    for (auto& batch : batches) MakeBatch(w, b, &rng, 128, &batch);
    size_t cursor = 0;
    auto next = [&](RankBatch* out) {
      if (cursor >= batches.size()) return false;
      *out = batches[cursor++];
      return true;
    };
    ASSERT_TRUE((*ranker)
                    ->Train(
                        next, [&] { cursor = 0; }, nullptr, nullptr)
                    .ok())
        << v.name;
    compare(**ranker, std::string(v.name) + ", trained");
  }
  // Not a cross network: no reference path.
  RankerOptions g;
  g.kind = RankerKind::kGbdt;
  auto trees = Ranker::CreateBuiltin(*w.space, b, g);
  ASSERT_TRUE(trees.ok());
  float c, p;
  EXPECT_FALSE(ScoreWithLibtorch(**trees, RandomRows(b, 1, 1, &rng), &c, &p).ok());
}

std::string SaveScript(const std::string& name, const std::string& body, int dense_width) {
  torch::jit::Module m("Fixture");
  m.register_parameter("w", torch::full({dense_width}, 0.5), false);
  m.define(body);
  auto path = (std::filesystem::temp_directory_path() / name).string();
  m.save(path);
  return path;
}

TEST(Ranker, AcceptsATorchScriptModelFollowingTheContract) {
  World w;
  RankInputBuilder b(*w.space, 8);
  auto path = SaveScript("qm_rank_fixture.pt", R"(
def forward(self, cat: Tensor, dense: Tensor, bag: Tensor) -> Tensor:
    s = torch.sigmoid((dense * self.w).sum(1, keepdim=True))
    return torch.cat([s, s * 0.1], 1)
)",
                         b.dense_width());
  auto ranker = Ranker::LoadTorchScript(path, b);
  ASSERT_TRUE(ranker.ok()) << ranker.status().ToString();
  EXPECT_EQ((*ranker)->kind(), "torchscript");
  std::mt19937 rng(3);
  RankBatch batch;
  MakeBatch(w, b, &rng, 5, &batch);
  std::vector<float> pc(5), pv(5);
  ASSERT_TRUE((*ranker)->Score(batch.inputs, pc.data(), pv.data()).ok());
  for (int i = 0; i < 5; ++i) {
    float expect = 0;
    for (int k = 0; k < b.dense_width(); ++k) expect += 0.5f * batch.inputs.dense[i * b.dense_width() + k];
    EXPECT_NEAR(pc[i], 1.0f / (1.0f + std::exp(-expect)), 1e-5);
    EXPECT_NEAR(pv[i], pc[i] * 0.1f, 1e-6);
  }
  std::filesystem::remove(path);
}

TEST(Ranker, RefusesATorchScriptModelWithTheWrongOutputShape) {
  World w;
  RankInputBuilder b(*w.space, 8);
  auto path = SaveScript("qm_rank_bad_fixture.pt", R"(
def forward(self, cat: Tensor, dense: Tensor, bag: Tensor) -> Tensor:
    return torch.sigmoid((dense * self.w).sum(1))
)",
                         b.dense_width());
  auto ranker = Ranker::LoadTorchScript(path, b);
  ASSERT_FALSE(ranker.ok());
  EXPECT_NE(ranker.status().message().find("does not follow the input contract"), std::string::npos)
      << ranker.status().message();
  std::filesystem::remove(path);
  auto missing = Ranker::LoadTorchScript("/nonexistent/model.pt", b);
  EXPECT_FALSE(missing.ok());
}

}  // namespace
}  // namespace qm::rank

namespace qm::rank {
namespace {

TEST(TwoStageScore, IsTheLogObjectivePlusTheRetrievalAndExposureTerms) {
  ScoreWeights w;
  w.w_click = 1.0;
  w.w_convert = 2.0;
  w.retrieval_weight = 0.3;
  w.inv_temperature = 20.0;
  ScoreTerms t;
  t.p_click = 0.1f;
  t.p_convert = 0.05f;
  t.value = 3.0;
  t.boost = 0.5;
  t.uv = 0.2;
  t.exposure_logit = 1.5;  // no exposure weight: not read
  const double objective = 0.1f + 2.0 * 0.05f * 3.0 * 0.5;
  EXPECT_DOUBLE_EQ(TwoStageScore(w, t), std::log(objective + 1e-9) + 0.3 * 0.2 * 20.0);
  w.exposure_weight = 0.5;
  t.log_valid_share = std::log(0.25);
  EXPECT_DOUBLE_EQ(TwoStageScore(w, t), std::log(objective + 1e-9) + 0.3 * 0.2 * 20.0 + 0.5 * (1.5 + std::log(0.25)));
  t.p_click = t.p_convert = 0;  // a zero objective stays finite
  EXPECT_TRUE(std::isfinite(TwoStageScore(w, t)));
}

// An item's packed row gives the rank row its ItemBatch row gives, the bag truncated alike after
// the customer's labels; a row that does not fit (more than kPackedTags tags, an id beyond int32)
// says so.
TEST(PackedItemRow, GivesTheRowOfItsItemBatchRowOrSaysItDoesNotFit) {
  World w;
  RankInputBuilder b(*w.space, 8);
  constexpr int C = features::FeatureSpace::kItemCatFields;
  features::ItemBatch ib;
  auto add_item = [&](std::vector<int64_t> cat, std::vector<int64_t> tags) {
    ib.cat.insert(ib.cat.end(), cat.begin(), cat.end());
    ib.tag_offsets.push_back(static_cast<int64_t>(ib.tags.size()));
    ib.tags.insert(ib.tags.end(), tags.begin(), tags.end());
    ++ib.n;
  };
  add_item({3, 0, 1, 2, 0}, {0});                              // no tags (0 = none)
  add_item({7, 1, 2, 3, 1}, {4, 0, 2, 9});                     // a padding 0 among its tags
  add_item({5, 0, 1, 1, 0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});  // exactly kPackedTags
  add_item({6, 0, 1, 1, 0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  add_item({int64_t{1} << 33, 0, 1, 1, 0}, {1});  // an id beyond int32
  ASSERT_EQ(PackedItemRow::kPackedTags, 10);
  EXPECT_EQ(PackedItemRow::Pack(ib, 0).tag_count, 0);
  EXPECT_EQ(PackedItemRow::Pack(ib, 1).tag_count, 3);
  EXPECT_EQ(PackedItemRow::Pack(ib, 2).tag_count, 10);
  EXPECT_EQ(PackedItemRow::Pack(ib, 3).tag_count, -1);
  EXPECT_EQ(PackedItemRow::Pack(ib, 4).tag_count, -1);
  // Customers with one label, and one with 14 (the bag of 16 then holds only 2 of the item's tags).
  features::CustomerBatch cb;
  w.space->EncodeCustomer(w.ds, 0, 0, {}, &cb);
  w.space->EncodeCustomer(w.ds, 1, 0, {}, &cb);
  while (static_cast<int64_t>(cb.labels.size()) - cb.label_offsets[1] < 14) {
    cb.labels.push_back(1 + static_cast<int64_t>(cb.labels.size()) % (w.space->label_vocab() - 1));
  }
  const std::vector<float> u = {0.1f, -0.2f, 0.3f, 0.4f, 0.0f, 0.5f, -0.6f, 0.7f}, v(8, 0.25f);
  float contact[features::kContactFeatures];
  for (int k = 0; k < features::kContactFeatures; ++k) contact[k] = 0.1f * static_cast<float>(k);
  const RankContext ctx{kAppHome, 9, 3};
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t i = 0; i < 3; ++i) {
      RankInputs from_batch, from_packed;
      b.Append(cb, c, ib, i, u.data(), v.data(), 0.7f, ctx, contact, &from_batch);
      b.Append(cb, c, PackedItemRow::Pack(ib, i), u.data(), v.data(), 0.7f, ctx, contact, &from_packed);
      EXPECT_EQ(from_packed.n, 1);
      EXPECT_EQ(from_packed.cat, from_batch.cat) << c << " " << i;
      EXPECT_EQ(from_packed.dense, from_batch.dense) << c << " " << i;
      EXPECT_EQ(from_packed.bag, from_batch.bag) << c << " " << i;
      EXPECT_EQ(from_batch.cat[static_cast<size_t>(w.space->customer_cat_fields())],
                ib.cat[static_cast<size_t>(i * C)]);
    }
  }
  // The long-labelled customer's bag: 14 labels, then the first two of item 2's tags.
  RankInputs r;
  b.Append(cb, 1, PackedItemRow::Pack(ib, 2), u.data(), v.data(), 0.7f, ctx, contact, &r);
  ASSERT_EQ(r.bag.size(), static_cast<size_t>(kBagWidth));
  EXPECT_EQ(r.bag[14], 1 + w.space->label_vocab());
  EXPECT_EQ(r.bag[15], 2 + w.space->label_vocab());
}

TEST(TwoStageScore, OrdersByScoreThenByItem) {
  EXPECT_TRUE(ScoresBefore(2.0, 9, 1.0, 1));
  EXPECT_FALSE(ScoresBefore(1.0, 1, 2.0, 9));
  EXPECT_TRUE(ScoresBefore(1.0, 3, 1.0, 4));
  EXPECT_FALSE(ScoresBefore(1.0, 4, 1.0, 4));
}

// A module whose item-id table is one row short of the version's item vocabulary fails on the
// largest id only: refused at load, naming the vocabularies; the full-size table is accepted.
TEST(Ranker, RefusesATorchScriptModelSmallerThanTheVocabularies) {
  World w;
  RankInputBuilder b(*w.space, 8);
  const std::vector<int64_t> vocab = b.CatVocab();
  ASSERT_EQ(static_cast<int>(vocab.size()), b.cat_width());
  std::mt19937 rng(5);
  RankBatch batch;
  MakeBatch(w, b, &rng, 20, &batch);
  for (size_t k = 0; k < batch.inputs.cat.size(); ++k) EXPECT_LT(batch.inputs.cat[k], vocab[k % vocab.size()]);
  for (int64_t id : batch.inputs.bag) EXPECT_LT(id, b.BagVocab());
  const int col = w.space->customer_cat_fields();  // the item id
  auto save = [&](const std::string& name, int64_t rows) {
    torch::jit::Module m("Fixture");
    m.register_parameter("t", torch::zeros({rows}), false);
    m.define(
        "def forward(self, cat: Tensor, dense: Tensor, bag: Tensor) -> Tensor:\n"
        "    s = torch.sigmoid(self.t.index_select(0, cat[:, " +
        std::to_string(col) +
        "])).unsqueeze(1)\n"
        "    return torch.cat([s, s], 1)\n");
    auto path = (std::filesystem::temp_directory_path() / name).string();
    m.save(path);
    return path;
  };
  const std::string small = save("qm_rank_small_fixture.pt", vocab[col] - 1);
  auto refused = Ranker::LoadTorchScript(small, b);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("does not accept the version's vocabularies"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find('\n'), std::string::npos) << "one line";
  const std::string full = save("qm_rank_full_fixture.pt", vocab[col]);
  auto accepted = Ranker::LoadTorchScript(full, b);
  EXPECT_TRUE(accepted.ok()) << accepted.status().ToString();
  std::filesystem::remove(small);
  std::filesystem::remove(full);
}

}  // namespace
}  // namespace qm::rank
