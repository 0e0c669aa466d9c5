// Unit tests of the stages that need a trained model or the event store: profile (the customer
// tower over a batch), rank (one ranker call and the two-stage score) and reserve (a page's
// stand-ins, a push batch's dry run). The model is the shared fixture's current version, loaded
// as the engine loads it; no engine is opened.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>

#include "activity.h"
#include "model.h"
#include "profile.h"
#include "qianmian/features/feature_space.h"
#include "qianmian/rank/two_stage_score.h"
#include "rank_stage.h"
#include "reserve.h"
#include "testing/engine_fixture.h"

namespace qm::serving {
namespace {

using testing::kNow;
using testing::SharedBank;
using testing::SharedFixture;

class ModelStagesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const Dataset& ds = SharedBank();
    retired_ = new std::vector<uint8_t>(ds.items.size(), 0);
    auto m = LoadModel(SharedFixture().artifacts, SharedFixture().v2, ds, *retired_, ServingConfig{});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = new std::shared_ptr<Model>(std::move(m).value());
    activity_ = new ActivityLog();
    activity_->Build(ds.events, ds.customers.size());
  }
  static void TearDownTestSuite() {
    delete model_;
    delete activity_;
    delete retired_;
  }
  const Dataset& ds() const { return SharedBank(); }
  const Model& md() const { return **model_; }
  ProfileSources Sources() const { return ProfileSources{&ds(), activity_, 30 * kMsPerDay, 90 * kMsPerDay}; }

  static std::shared_ptr<Model>* model_;
  static ActivityLog* activity_;
  static std::vector<uint8_t>* retired_;
};
std::shared_ptr<Model>* ModelStagesTest::model_ = nullptr;
ActivityLog* ModelStagesTest::activity_ = nullptr;
std::vector<uint8_t>* ModelStagesTest::retired_ = nullptr;

TEST_F(ModelStagesTest, AProfileBatchEmbedsEachCustomerAsABatchOfOneWould) {
  ProfileBatch batch, first, second;
  AddProfile(Sources(), md(), ds().customers[3].id, kNow, &batch);
  AddProfile(Sources(), md(), "nobody-we-know", kNow, &batch);
  AddProfile(Sources(), md(), ds().customers[3].id, kNow, &first);
  AddProfile(Sources(), md(), "nobody-we-know", kNow, &second);
  ASSERT_TRUE(EmbedProfiles(ds(), md(), kNow, &batch).ok());
  ASSERT_TRUE(EmbedProfiles(ds(), md(), kNow, &first).ok());
  ASSERT_TRUE(EmbedProfiles(ds(), md(), kNow, &second).ok());
  ASSERT_EQ(batch.u.size(), 2u * md().dim);
  for (int k = 0; k < md().dim; ++k) {
    EXPECT_NEAR(batch.U(0)[k], first.U(0)[k], 1e-5);
    EXPECT_NEAR(batch.U(1)[k], second.U(0)[k], 1e-5);
  }
  EXPECT_TRUE(batch.profiles[0].known);
  EXPECT_FALSE(batch.profiles[1].known);
  const Customer& unknown = batch.profiles[1].customer(ds());
  EXPECT_EQ(unknown.id, "nobody-we-know");
  EXPECT_EQ(unknown.risk, 1);  // SPEC §5: treated as C1
  EXPECT_TRUE(batch.profiles[1].activity.history.empty());
}

TEST_F(ModelStagesTest, RankScoresEveryRowWithItsOwnProfileAndTheOneTwoStageScore) {
  ProfileBatch pb;
  AddProfile(Sources(), md(), ds().customers[5].id, kNow, &pb);
  AddProfile(Sources(), md(), ds().customers[8].id, kNow, &pb);
  ASSERT_TRUE(EmbedProfiles(ds(), md(), kNow, &pb).ok());
  std::vector<Candidate> a = {Candidate{0}, Candidate{41}, Candidate{100}};
  std::vector<Candidate> b = {Candidate{41}, Candidate{7}};
  std::vector<RankRow> rows;
  for (Candidate& c : a) rows.push_back({0, &c});
  for (Candidate& c : b) rows.push_back({1, &c});
  ServingConfig sc;
  sc.w_convert = 2.0;
  const rank::ScoreWeights w = ServingScoreWeights(sc, md());
  EXPECT_EQ(w.w_convert, 2.0);
  EXPECT_EQ(w.retrieval_weight, md().retrieval_weight);
  EXPECT_EQ(w.exposure_weight, 0.0);  // serving loads no exposure model
  const rank::RankContext ctx{kAppHome, 12, 2};
  int64_t model_us = -1;
  ASSERT_TRUE(RankCandidates(md(), ds(), pb, kNow, {ctx, ctx}, w, rows, &model_us).ok());
  EXPECT_GE(model_us, 0);
  for (const RankRow& r : rows) {
    const Candidate& c = *r.candidate;
    EXPECT_GT(c.pc, 0.0f);
    EXPECT_LT(c.pc, 1.0f);
    EXPECT_FLOAT_EQ(static_cast<float>(c.uv), features::Dot(pb.U(r.profile), md().Embedding(c.item), md().dim));
    rank::ScoreTerms t;
    t.p_click = c.pc;
    t.p_convert = c.pv;
    t.value = ds().items[c.item].value;
    t.boost = ds().items[c.item].boost;
    t.uv = c.uv;
    EXPECT_DOUBLE_EQ(c.score, rank::TwoStageScore(w, t));
  }
  EXPECT_NE(a[1].uv, b[0].uv);  // item 41 for two customers: each with their own embedding
  SortByScore(&a);
  EXPECT_TRUE(a[0].score >= a[1].score && a[1].score >= a[2].score);
}

// The rank stage reads each item's packed row: the same rank row as its encoded row, for every
// item of a loaded version and for an item refreshed with more tags than a packed row holds.
TEST_F(ModelStagesTest, EachItemsPackedRowGivesTheRankRowOfItsEncodedRow) {
  ProfileBatch pb;
  AddProfile(Sources(), md(), ds().customers[5].id, kNow, &pb);
  ASSERT_TRUE(EmbedProfiles(ds(), md(), kNow, &pb).ok());
  const std::vector<float> v(md().dim, 0.5f);
  float contact[features::kContactFeatures] = {};
  const rank::RankContext ctx{kAppHome, 12, 2};
  auto same_rows = [&](const Model& m, uint32_t it) {
    rank::RankInputs a, b;
    m.builder->Append(pb.encoded, 0, m.enc, m.item_enc[it], pb.U(0), v.data(), 0.3f, ctx, contact, &a);
    m.builder->Append(pb.encoded, 0, m.packed[it], pb.U(0), v.data(), 0.3f, ctx, contact, &b);
    return a.cat == b.cat && a.dense == b.dense && a.bag == b.bag;
  };
  ASSERT_EQ(md().packed.size(), ds().items.size());
  for (uint32_t it = 0; it < ds().items.size(); ++it) {
    ASSERT_GE(md().packed[it].tag_count, 0) << it;
    ASSERT_TRUE(same_rows(md(), it)) << it;
  }
  // A refreshed item: its new row is packed, or marked as not fitting when it has too many tags.
  Dataset copy = ds();
  auto m = LoadModel(SharedFixture().artifacts, SharedFixture().v2, copy, *retired_, ServingConfig{});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  Model& fresh = **m;
  const uint32_t it = 3;
  copy.items[it].tags.clear();
  for (uint32_t t = 0; t < copy.item_tags.size() && copy.items[it].tags.size() < 12; ++t)
    copy.items[it].tags.push_back(t);
  ASSERT_GT(copy.items[it].tags.size(), static_cast<size_t>(rank::PackedItemRow::kPackedTags)) << "the bank's tags";
  ASSERT_TRUE(fresh.Refresh(copy, {it}, *retired_).ok());
  EXPECT_EQ(fresh.item_enc[it], static_cast<uint32_t>(fresh.enc.n - 1));
  EXPECT_EQ(fresh.packed[it].tag_count, -1);
  copy.items[it].tags.resize(std::min<size_t>(copy.items[it].tags.size(), 2));
  ASSERT_TRUE(fresh.Refresh(copy, {it}, *retired_).ok());
  ASSERT_GE(fresh.packed[it].tag_count, 0);
  EXPECT_TRUE(same_rows(fresh, it));
}

// Best score first, ties by item, equal (score, item) pairs in their given order, NaN last.
TEST(SortByScore, OrdersByScoreThenItemKeepsEqualPairsInOrderAndPutsNanLast) {
  std::vector<Candidate> c(7);
  const double scores[] = {1.0, 2.0, 1.0, std::nan(""), 2.0, 1.0, 3.0};
  const uint32_t items[] = {5, 9, 4, 1, 8, 5, 2};
  for (size_t k = 0; k < c.size(); ++k) {
    c[k].item = items[k];
    c[k].score = scores[k];
    c[k].reasons = static_cast<int32_t>(k);
  }
  SortByScore(&c);
  const std::vector<int32_t> want = {6, 4, 1, 2, 0, 5, 3};  // by their given positions
  for (size_t k = 0; k < c.size(); ++k) EXPECT_EQ(c[k].reasons, want[k]) << k;
}

class ReserveTest : public ModelStagesTest {
 protected:
  void SetUp() override {
    static std::atomic<int> n{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("qm_stages_reserve_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(dir_);
    policy::StoreConfig sc;
    sc.path = dir_.string();
    sc.sync = false;
    store_ = std::move(policy::EventStore::Open(sc)).value();
    policy::PolicyConfig pc;
    pc.caps.clear();
    policy::CapRule per_item;  // one contact per item and day: an item shown once is then blocked
    per_item.name = "item_daily";
    per_item.scope = policy::CapScope::kCustomerItem;
    per_item.limit = 1;
    per_item.window = kMsPerDay;
    pc.caps.push_back(per_item);
    pc.cooldowns.clear();
    pc.quiet_hours.clear();
    policy_ =
        std::make_unique<policy::Policy>(std::move(policy::Policy::Create(pc, ds().channels, TimeZone::Utc())).value());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // `n` items no stateless rule blocks for `cu` on `channel` at kNow.
  std::vector<uint32_t> Allowed(const Customer& cu, size_t n, ChannelId channel = kAppHome) const {
    std::vector<uint32_t> out;
    std::vector<std::string> blocked;
    for (uint32_t i = 0; i < ds().items.size() && out.size() < n; ++i) {
      blocked.clear();
      policy_->StaticCheck(cu, policy::MakeCandidate(ds(), i), channel, kNow, &blocked);
      if (blocked.empty() && !ds().items[i].service) out.push_back(i);
    }
    return out;
  }
  std::filesystem::path dir_;
  std::unique_ptr<policy::EventStore> store_;
  std::unique_ptr<policy::Policy> policy_;
};

TEST_F(ReserveTest, APageThatACapTurnsAwayIsFilledFromTheNextCandidates) {
  const Customer& cu = ds().customers[11];
  const std::vector<uint32_t> items = Allowed(cu, 5);
  ASSERT_EQ(items.size(), 5u);
  std::vector<Candidate> ranked;
  for (uint32_t it : items) ranked.push_back(Candidate{it});
  Page page;
  page.positions = {0, 1};
  page.used = {1, 1, 0, 0, 0};
  page.explored.assign(5, 0);
  std::map<std::string, int64_t> dropped;
  auto first = ReservePage(*policy_, store_.get(), ds(), cu, ranked, page, kAppHome, kNow, "req-1", 2, &dropped);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->served, (std::vector<size_t>{0, 1}));
  // A second request the same day: items 0 and 1 are capped; the stand-ins 2 and 3 take their place.
  auto second =
      ReservePage(*policy_, store_.get(), ds(), cu, ranked, page, kAppHome, kNow + 1000, "req-2", 2, &dropped);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->served, (std::vector<size_t>{2, 3}));
  EXPECT_EQ(dropped["reserve.cap.customer_item"], 2);
  auto again = ReservePage(*policy_, store_.get(), ds(), cu, ranked, page, kAppHome, kNow + 2000, "req-2", 2, &dropped);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);  // the same request id: its earlier result, nothing counted twice
  EXPECT_EQ(again->served, (std::vector<size_t>{2, 3}));
}

TEST_F(ReserveTest, APushBatchTakesTheFirstAllowedCandidatesAndCountsThePressureOfOtherRuns) {
  const Customer& cu = ds().customers[12];
  const std::vector<uint32_t> items = Allowed(cu, 4, kWechatPush);
  ASSERT_EQ(items.size(), 4u);
  std::vector<std::vector<Candidate>> ranked(1);
  for (uint32_t it : items) ranked[0].push_back(Candidate{it});
  auto reserve = [&](const std::string& run, TimeMs now, bool dry) {
    return ReservePushes(*policy_, store_.get(), ds(), {&cu}, ranked, kWechatPush, "wechat_push", now, run, 2, dry);
  };
  auto dry = reserve("", kNow, true);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  const auto& d = dry->contacts[0].decisions;
  ASSERT_EQ(d.size(), items.size());
  EXPECT_TRUE(d[0].taken && d[1].taken);
  EXPECT_FALSE(d[2].taken || d[3].taken);
  EXPECT_TRUE(store_->State(cu.id).value().records.empty());  // a dry run writes nothing
  auto first = reserve("run-1", kNow, false);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->pushes_7d[0], 0);
  EXPECT_EQ(RecordedSends(store_.get(), cu.id, "run-1", "wechat_push").value().size(), 2u);
  // Another run an hour later: the first two items are capped for the day, the next two go out,
  // and the first run's sends are the customer's contact pressure.
  auto second = reserve("run-2", kNow + kMsPerHour, false);
  ASSERT_TRUE(second.ok());
  const auto& d2 = second->contacts[0].decisions;
  EXPECT_FALSE(d2[0].taken || d2[1].taken);
  EXPECT_TRUE(d2[2].taken && d2[3].taken);
  EXPECT_EQ(d2[0].blocked_by, (std::vector<std::string>{policy::blocked::kCapCustomerItem}));
  EXPECT_EQ(second->pushes_7d[0], 2);
  EXPECT_EQ(second->pushes_30d[0], 2);
}

}  // namespace
}  // namespace qm::serving
