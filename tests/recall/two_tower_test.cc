#include "qianmian/recall/two_tower.h"

#include <gtest/gtest.h>
#include <algorithm>
#include <filesystem>
#include <random>

namespace qm::recall {
namespace {

// Customers labelled "saver" click deposit articles, "investor" click fund articles.
struct Planted {
  Dataset ds;
  std::vector<PositiveExample> examples;
  uint32_t cold_deposit = 0, cold_fund = 0;  // items with no interactions
};

Planted MakePlanted() {
  Planted p;
  Dataset& ds = p.ds;
  uint32_t saver = ds.labels.Intern("saver"), investor = ds.labels.Intern("investor");
  uint32_t dep = ds.categories.Intern("deposit"), fund = ds.categories.Intern("fund");
  for (int i = 0; i < 40; ++i) {
    Item it;
    bool is_dep = i % 2 == 0;
    it.id = "A" + std::to_string(i);
    it.category = is_dep ? dep : fund;
    it.title =
        is_dep ? "定期存款利率解读第" + std::to_string(i) + "期" : "基金定投收益分析第" + std::to_string(i) + "期";
    ds.AddItem(it);
  }
  for (int c = 0; c < 200; ++c) {
    Customer cu;
    cu.id = "C" + std::to_string(c);
    cu.tags = {c % 2 == 0 ? saver : investor};
    ds.AddCustomer(cu);
  }
  Item cd;
  cd.id = "COLD_DEP";
  cd.category = dep;
  cd.title = "定期存款利率解读特刊";
  p.cold_deposit = ds.AddItem(cd);
  Item cf;
  cf.id = "COLD_FUND";
  cf.category = fund;
  cf.title = "基金定投收益分析特刊";
  p.cold_fund = ds.AddItem(cf);
  std::mt19937 rng(3);
  for (int c = 0; c < 200; ++c) {
    for (int k = 0; k < 8; ++k) {
      int item = 2 * static_cast<int>(rng() % 20) + (c % 2);  // even items: deposits
      TimeMs ts = 1000 * (k + 1);
      ds.events.Append(ts, c, item, EventType::kClick, kAppHome, "");
      p.examples.push_back({static_cast<uint32_t>(c), static_cast<uint32_t>(item), ts});
    }
  }
  return p;
}

TEST(TwoTower, LearnsPlantedPreferencesAndScoresColdItemsByContent) {
  SetTorchThreads(1);
  Planted p = MakePlanted();
  features::FeatureOptions fo;
  fo.text_buckets = 1 << 12;  // small hash space keeps the test quick
  auto fs = features::FeatureSpace::Fit(p.ds, fo);
  ASSERT_TRUE(fs.ok());
  TwoTowerOptions o;
  o.epochs = 6;
  o.batch_size = 64;
  o.embedding_dim = 16;
  o.hidden = 32;
  auto model = TwoTowerModel::Create(*fs, o);
  ASSERT_TRUE(model.ok());
  features::HistoryIndex hist(p.ds.events, p.ds.customers.size());
  TrainStats stats;
  ASSERT_TRUE((*model)->Train(p.ds, hist, p.examples, nullptr, &stats).ok());
  ASSERT_EQ(stats.epoch_loss.size(), 6u);
  EXPECT_LT(stats.epoch_loss.back(), stats.epoch_loss.front());

  features::CustomerBatch cb;
  uint32_t customers[2] = {0, 1};  // a saver, an investor
  fs->EncodeCustomers(p.ds, customers, 2, 100000, &hist, &cb);
  std::vector<float> u(2 * 16);
  ASSERT_TRUE((*model)->EncodeCustomers(cb, u.data()).ok());
  features::ItemBatch ib;
  uint32_t items[2] = {p.cold_deposit, p.cold_fund};
  fs->EncodeItems(p.ds, items, 2, &ib);
  std::vector<float> v(2 * 16);
  ASSERT_TRUE((*model)->EncodeItems(ib, v.data()).ok());
  auto dot = [&](int c, int i) {
    float s = 0;
    for (int d = 0; d < 16; ++d) s += u[c * 16 + d] * v[i * 16 + d];
    return s;
  };
  EXPECT_GT(dot(0, 0), dot(0, 1)) << "the saver should prefer the unseen deposit article";
  EXPECT_GT(dot(1, 1), dot(1, 0)) << "the investor should prefer the unseen fund article";
}

TEST(TwoTower, SavesAndLoadsToIdenticalEmbeddings) {
  Planted p = MakePlanted();
  auto fs = features::FeatureSpace::Fit(p.ds, features::FeatureOptions{});
  ASSERT_TRUE(fs.ok());
  TwoTowerOptions o;
  o.embedding_dim = 8;
  o.hidden = 16;
  o.epochs = 1;
  auto model = TwoTowerModel::Create(*fs, o);
  ASSERT_TRUE(model.ok());
  auto path = (std::filesystem::temp_directory_path() / "qm_two_tower_test.pt").string();
  ASSERT_TRUE((*model)->Save(path).ok());
  auto loaded = TwoTowerModel::Load(path, *fs);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  features::ItemBatch ib;
  uint32_t items[3] = {0, 1, 2};
  fs->EncodeItems(p.ds, items, 3, &ib);
  std::vector<float> a(24), b(24);
  ASSERT_TRUE((*model)->EncodeItems(ib, a.data()).ok());
  ASSERT_TRUE((*loaded)->EncodeItems(ib, b.data()).ok());
  EXPECT_EQ(a, b);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".json");
}

// EncodeCustomers runs the inference path (OpenBLAS, no libtorch); it must give libtorch's
// embeddings for one customer and for a batch, with and without history and labels, untrained
// and trained.
TEST(TwoTower, CustomerTowerInferencePathMatchesLibtorch) {
  SetTorchThreads(1);
  Planted p = MakePlanted();
  features::FeatureOptions fo;
  fo.text_buckets = 1 << 12;
  auto fs = features::FeatureSpace::Fit(p.ds, fo);
  ASSERT_TRUE(fs.ok());
  TwoTowerOptions o;
  o.epochs = 1;
  o.batch_size = 64;
  o.embedding_dim = 16;
  o.hidden = 24;
  auto model = TwoTowerModel::Create(*fs, o);
  ASSERT_TRUE(model.ok());
  features::HistoryIndex hist(p.ds.events, p.ds.customers.size());
  auto compare = [&](const char* when) {
    // Customers 0-9 at three times: before any event (empty history), mid-way and after all.
    for (TimeMs now : {TimeMs{0}, TimeMs{4500}, TimeMs{100000}}) {
      std::vector<uint32_t> ids(10);
      for (uint32_t c = 0; c < 10; ++c) ids[c] = c;
      features::CustomerBatch batch;
      fs->EncodeCustomers(p.ds, ids.data(), 10, now, &hist, &batch);
      // Customer 0 without labels.
      batch.labels.erase(batch.labels.begin(), batch.labels.begin() + batch.label_offsets[1]);
      const int64_t dropped = batch.label_offsets[1];
      for (auto& off : batch.label_offsets) off = std::max<int64_t>(0, off - dropped);
      std::vector<float> fast(10 * 16), ref(10 * 16), one(16);
      ASSERT_TRUE((*model)->EncodeCustomers(batch, fast.data()).ok());
      ASSERT_TRUE(EncodeCustomersWithLibtorch(**model, batch, ref.data()).ok());
      for (size_t k = 0; k < fast.size(); ++k) EXPECT_NEAR(fast[k], ref[k], 1e-5) << when << ", now " << now;
      features::CustomerBatch single;
      fs->EncodeCustomers(p.ds, &ids[3], 1, now, &hist, &single);
      ASSERT_TRUE((*model)->EncodeCustomers(single, one.data()).ok());
      for (int k = 0; k < 16; ++k) EXPECT_NEAR(one[k], ref[3 * 16 + k], 1e-5) << when << ", one customer";
    }
  };
  compare("untrained");
  TrainStats stats;
  ASSERT_TRUE((*model)->Train(p.ds, hist, p.examples, nullptr, &stats).ok());
  compare("trained");
}

TEST(TwoTower, RefusesToTrainWithoutPositives) {
  Planted p = MakePlanted();
  auto fs = features::FeatureSpace::Fit(p.ds, features::FeatureOptions{});
  auto model = TwoTowerModel::Create(*fs, TwoTowerOptions{});
  ASSERT_TRUE(model.ok());
  features::HistoryIndex hist;
  Status st = (*model)->Train(p.ds, hist, {}, nullptr, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qm::recall
