// Unit tests of the request path's stages (serving/src): the candidate set, every recall source,
// the filter, re-rank and the customer activity, on a hand-built catalogue and a hand-built
// Model (random-free vectors in exact Faiss indexes): no training, no engine.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>

#include "activity.h"
#include "candidates.h"
#include "filter.h"
#include "model.h"
#include "qianmian/core/time.h"
#include "qianmian/serving/rerank.h"
#include "recall_sources.h"

namespace qm::serving {
namespace {

// 8 products (items 0..7) and 12 content items (8..19). Item i's embedding is the unit vector
// at angle 0.1 * i in the first two dimensions, so its inner product with (1, 0, 0, 0) falls
// with i: the nearest items to that query are the lowest indexes of each kind.
constexpr int kDim = 4;
constexpr int kProducts = 8;
constexpr int kItems = 20;

Dataset Catalogue() {
  Dataset ds;
  const uint32_t spring = ds.campaigns.Intern("spring");
  const uint32_t funds = ds.categories.Intern("funds");
  const uint32_t news = ds.categories.Intern("news");
  for (int i = 0; i < kItems; ++i) {
    Item it;
    it.id = (i < kProducts ? "p" : "c") + std::to_string(i);
    it.kind = i < kProducts ? ItemKind::kProduct : ItemKind::kContent;
    it.category = i < kProducts ? funds : news;
    if (i == 3 || i == 12) it.campaign = spring;
    ds.AddItem(std::move(it));
  }
  Customer mass;
  mass.id = "mass";
  mass.tier = Tier::kMass;
  mass.risk = 3;
  ds.AddCustomer(mass);
  Customer affluent = mass;
  affluent.id = "affluent";
  affluent.tier = Tier::kAffluent;
  ds.AddCustomer(affluent);
  return ds;
}

std::vector<float> Vec(int i) {
  return {static_cast<float>(std::cos(0.1 * i)), static_cast<float>(std::sin(0.1 * i)), 0.0f, 0.0f};
}

// A Model holding only what recall reads: embeddings and the two exact indexes (row = item).
std::unique_ptr<Model> HandModel() {
  auto m = std::make_unique<Model>();
  m->dim = kDim;
  for (int kind = 0; kind < 2; ++kind) {
    std::vector<float> vecs;
    std::vector<int64_t> ids;
    for (int i = kind == 0 ? 0 : kProducts; i < (kind == 0 ? kProducts : kItems); ++i) {
      auto v = Vec(i);
      vecs.insert(vecs.end(), v.begin(), v.end());
      ids.push_back(i);
    }
    recall::VectorIndexOptions o;
    o.dim = kDim;
    o.kind = recall::IndexKind::kExact;
    m->index[kind] =
        std::move(recall::VectorIndex::Build(o, vecs.data(), ids.data(), static_cast<int64_t>(ids.size()))).value();
  }
  for (int i = 0; i < kItems; ++i) {
    auto v = Vec(i);
    m->emb.insert(m->emb.end(), v.begin(), v.end());
    m->row_item.push_back(i);
    m->item_row.push_back(i);
  }
  m->trained_rows = kItems;
  return m;
}

const std::vector<float> kQuery = {1, 0, 0, 0};

std::vector<uint32_t> Items(const CandidateSet& set) {
  std::vector<uint32_t> out;
  for (const Candidate& c : set.candidates()) out.push_back(c.item);
  return out;
}

std::vector<std::string> Reasons(const CandidateSet& set, const Dataset& ds, size_t k) {
  std::vector<std::string> out;
  set.AppendReasons(set[k], ds, &out);
  return out;
}

class StagesTest : public ::testing::Test {
 protected:
  Dataset ds_ = Catalogue();
  std::unique_ptr<Model> md_ = HandModel();
  std::vector<uint8_t> retired_ = std::vector<uint8_t>(kItems, 0);
  int64_t ann_us_ = 0;
};

TEST_F(StagesTest, ACandidateFoundTwiceKeepsBothReasonsButIsOneCandidate) {
  std::map<std::string, int64_t> dropped;
  retired_[5] = 1;
  CandidateSet set(8, &retired_, {7}, &dropped);
  EXPECT_TRUE(set.Add(1, Source::kAnn));
  EXPECT_FALSE(set.Add(1, Source::kPopular));
  EXPECT_FALSE(set.Add(1, Source::kPopular));  // the same reason is kept once
  EXPECT_FALSE(set.Add(5, Source::kAnn));      // retired
  EXPECT_FALSE(set.Add(7, Source::kAnn));      // excluded, counted once
  EXPECT_FALSE(set.Add(7, Source::kPopular));
  EXPECT_FALSE(set.Add(kItems + 3, Source::kAnn));  // not an item
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{1}));
  EXPECT_EQ(Reasons(set, ds_, 0), (std::vector<std::string>{"recall:ann", "recall:popular"}));
  EXPECT_EQ(dropped["excluded"], 1);
}

TEST_F(StagesTest, AClosedCandidateCollectsNoMoreReasons) {
  CandidateSet set(8, &retired_);
  set.Add(2, Source::kAnn);
  const Candidate moved = set[0];
  set.Close(0);
  EXPECT_FALSE(set.Add(2, Source::kFallbackPopular, 0, true));
  std::vector<std::string> reasons;
  set.AppendReasons(moved, ds_, &reasons);
  EXPECT_EQ(reasons, (std::vector<std::string>{"recall:ann"}));
}

TEST_F(StagesTest, AnnRecallsTheNearestItemsOfItsKindBestFirst) {
  CandidateSet set(16, &retired_);
  ASSERT_EQ(RecallAnn(*md_, 0, kQuery.data(), 3, &set, &ann_us_).value(), 3);
  ASSERT_EQ(RecallAnn(*md_, 1, kQuery.data(), 2, &set, &ann_us_).value(), 2);
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{0, 1, 2, 8, 9}));
  EXPECT_EQ(Reasons(set, ds_, 3), (std::vector<std::string>{"recall:ann"}));
}

TEST_F(StagesTest, AnnSkipsRowsThatAreNoLongerLive) {
  md_->row_item[0] = -1;  // retired or replaced since the version was trained
  md_->row_item[2] = -1;
  CandidateSet set(16, &retired_);
  EXPECT_EQ(RecallAnn(*md_, 0, kQuery.data(), 4, &set, &ann_us_).value(), 2);
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(md_->ItemOfRow(0), -1);
  EXPECT_EQ(md_->ItemOfRow(-1), -1);
  EXPECT_EQ(md_->ItemOfRow(kItems), -1);
  EXPECT_EQ(md_->ItemOfRow(3), 3);
}

TEST_F(StagesTest, ItemToItemReadsTheVersionsTableNewestSeedFirst) {
  // Table of k = 3 per kind: seed 4's lists are (5, 6, 7) and (10, 11, 12); seed 15's (0, 1, 2)
  // and (16, 17, 18); everything else empty.
  md_->neighbours.rows = kItems;
  md_->neighbours.k = 3;
  md_->neighbours.labels.assign(kItems * 2 * 3, -1);
  auto put = [&](int row, int kind, std::vector<int32_t> l) {
    std::copy(l.begin(), l.end(), md_->neighbours.labels.begin() + (row * 2 + kind) * 3);
  };
  put(4, 0, {5, 6, 7});
  put(4, 1, {10, 11, 12});
  put(15, 0, {0, 1, 2});
  put(15, 1, {16, 17, 18});
  CandidateSet set(16, &retired_);
  // History newest first: 15 then 4; two seeds; quota 5 -> 3 per list, interleaved.
  EXPECT_EQ(RecallSimilar(*md_, {15, 4}, 2, 5, &set, &ann_us_).value(), 5);
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{0, 16, 5, 10, 1}));
  EXPECT_EQ(Reasons(set, ds_, 0), (std::vector<std::string>{"recall:similar_to:c15"}));
  EXPECT_EQ(Reasons(set, ds_, 2), (std::vector<std::string>{"recall:similar_to:p4"}));
  EXPECT_TRUE(md_->nn.empty());  // nothing searched
}

TEST_F(StagesTest, ItemToItemSearchesSeedsTheTableDoesNotCoverAndCachesThem) {
  CandidateSet set(16, &retired_);  // no table: every seed is searched
  EXPECT_EQ(RecallSimilar(*md_, {9}, 1, 4, &set, &ann_us_).value(), 4);
  // Nearest products to item 9's vector: 7, 6, 5, ...; nearest content: 9 itself (skipped), then
  // 8 and 10 (a tie, the lower label first).
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{7, 6, 8, 5}));
  EXPECT_EQ(md_->nn.size(), 2u);  // cached per (row, kind)
  CandidateSet again(16, &retired_);
  EXPECT_EQ(RecallSimilar(*md_, {9}, 1, 4, &again, &ann_us_).value(), 4);
  EXPECT_EQ(Items(again), Items(set));
  CandidateSet none(16, &retired_);
  EXPECT_EQ(RecallSimilar(*md_, {}, 2, 4, &none, &ann_us_).value(), -1);  // no seed: did not run
}

TEST_F(StagesTest, PopularTakesTheSegmentThenTheChannelUpToTheQuotaOfNewCandidates) {
  PopularLists popular;
  popular.by_channel = {{1, 2, 3, 4, 5}, {}};
  popular.by_segment.assign(2 * kNumTiers, {});
  popular.by_segment[static_cast<int>(Tier::kAffluent)] = {3, 9};
  CandidateSet known(16, &retired_);
  known.Add(1, Source::kAnn);
  EXPECT_EQ(RecallPopular(popular, kAppHome, Tier::kAffluent, true, 4, &known), 4);
  EXPECT_EQ(Items(known), (std::vector<uint32_t>{1, 3, 9, 2, 4}));  // 1 was there: a reason, not a new one
  CandidateSet unknown(16, &retired_);
  EXPECT_EQ(RecallPopular(popular, kAppHome, Tier::kAffluent, false, 2, &unknown), 2);
  EXPECT_EQ(Items(unknown), (std::vector<uint32_t>{1, 2}));
}

TEST_F(StagesTest, PushPopularCountsEveryContentItemTowardsItsQuota) {
  PopularLists popular;
  popular.by_channel = {{}, {8, 9, 10, 11}};
  popular.by_segment.assign(2 * kNumTiers, {});
  popular.by_segment[kNumTiers + static_cast<int>(Tier::kMass)] = {0, 8, 1};  // products are skipped
  CandidateSet set(16, &retired_);
  set.Add(8, Source::kAnn);
  RecallPushPopular(popular, ds_, kWechatPush, Tier::kMass, 3, &set, [](uint32_t it) { return it != 10; });
  // 8 (already a candidate) and 9 count, 10 counts but is not kept: the quota of 3 is used.
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{8, 9}));
  EXPECT_EQ(Reasons(set, ds_, 0), (std::vector<std::string>{"recall:ann", "recall:popular"}));
}

TEST_F(StagesTest, CampaignPinsReachOnlyTheirSegmentAndChannel) {
  CampaignPins pins;
  CampaignPin pin;
  pin.campaign = "spring";
  pin.tiers = {"affluent"};
  pin.channels = {"app_home"};
  ASSERT_TRUE(pins.Configure({pin}, ds_.channels).ok());
  pins.IndexItems(ds_, retired_);
  CandidateSet affluent(16, &retired_), mass(16, &retired_), push(16, &retired_);
  EXPECT_EQ(RecallCampaigns(pins, ds_, kAppHome, Tier::kAffluent, 5, &affluent), 2);
  EXPECT_EQ(Items(affluent), (std::vector<uint32_t>{3, 12}));
  EXPECT_EQ(Reasons(affluent, ds_, 0), (std::vector<std::string>{"campaign:spring"}));
  EXPECT_EQ(RecallCampaigns(pins, ds_, kAppHome, Tier::kMass, 5, &mass), 0);
  EXPECT_EQ(RecallCampaigns(pins, ds_, kWechatPush, Tier::kAffluent, 5, &push), 0);
  retired_[3] = 1;
  pins.IndexItems(ds_, retired_);
  CandidateSet after(16, &retired_);
  EXPECT_EQ(RecallCampaigns(pins, ds_, kAppHome, Tier::kAffluent, 5, &after), 1);
  pin.channels = {"carrier_pigeon"};
  Status st = pins.Configure({pin}, ds_.channels);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("'serving.campaigns[0].channels'"), std::string::npos) << st.ToString();
}

TEST_F(StagesTest, FreshSamplesOnlyNewItemsAndIsSeeded) {
  PopularLists popular;
  popular.positives.assign(kItems, 10);
  for (uint32_t i : {4u, 11u, 17u}) popular.positives[i] = 1;
  popular.any_order.resize(kItems);
  for (uint32_t i = 0; i < kItems; ++i) popular.any_order[i] = i;
  std::stable_sort(popular.any_order.begin(), popular.any_order.end(),
                   [&](uint32_t a, uint32_t b) { return popular.positives[a] > popular.positives[b]; });
  std::mt19937_64 a(99), b(99);
  CandidateSet first(16, &retired_), second(16, &retired_);
  const int64_t n = RecallFresh(popular, 3, 2, &a, &first);
  EXPECT_GE(n, 1);
  EXPECT_LE(n, 2);
  for (uint32_t it : Items(first)) EXPECT_TRUE(it == 4 || it == 11 || it == 17) << it;
  RecallFresh(popular, 3, 2, &b, &second);
  EXPECT_EQ(Items(first), Items(second));
  EXPECT_EQ(Reasons(first, ds_, 0), (std::vector<std::string>{"recall:fresh"}));
}

TEST_F(StagesTest, FreshFindsTheNewItemsByBinarySearchAndSkipsItemsThatGainedPositives) {
  // A large catalogue: 6,000 known items (5 positives), then 4,000 new ones (0-2), sorted as Build does.
  constexpr uint32_t kMany = 10000;
  std::vector<uint8_t> retired(kMany, 0);
  PopularLists popular;
  popular.positives.resize(kMany);
  for (uint32_t i = 0; i < kMany; ++i) popular.positives[i] = (i * 7919) % kMany < 6000 ? 5 : (i % 3);
  popular.any_order.resize(kMany);
  for (uint32_t i = 0; i < kMany; ++i) popular.any_order[i] = i;
  std::stable_sort(popular.any_order.begin(), popular.any_order.end(),
                   [&](uint32_t a, uint32_t b) { return popular.positives[a] > popular.positives[b]; });
  for (int max_positives : {1, 3, 6, 100}) {
    size_t scanned = popular.any_order.size();  // the reference: back from the end while new
    while (scanned > 0 && popular.IsNew(popular.any_order[scanned - 1], max_positives)) --scanned;
    EXPECT_EQ(popular.NewFrom(max_positives), scanned) << max_positives;
  }
  // Feedback since the order was built: every other new item gains positives and is never drawn.
  std::vector<bool> gained(kMany, false);
  for (size_t k = popular.NewFrom(3); k < kMany; k += 2) {
    popular.positives[popular.any_order[k]] = 4;
    gained[popular.any_order[k]] = true;
  }
  std::mt19937_64 rng(5);
  int64_t drawn = 0;
  for (int page = 0; page < 200; ++page) {
    CandidateSet set(64, &retired);
    drawn += RecallFresh(popular, 3, 8, &rng, &set);
    for (uint32_t it : Items(set)) {
      EXPECT_LT(popular.positives[it], 3u) << it;
      EXPECT_FALSE(gained[it]) << it;
    }
  }
  EXPECT_GT(drawn, 200 * 4);  // about half the draws land on an item still new
}

TEST(Rerank, FollowsTheSlotLayoutAndFallsBackToEitherKindWhenASlotsKindRunsOut) {
  // Ranked: three products, then two content items.
  std::vector<PageCandidate> ranked = {{0, 1}, {0, 2}, {0, 3}, {1, 4}, {1, 5}};
  PageOptions o;
  o.slot_kinds = {1, 0, 1, 1};
  std::mt19937_64 rng(1);
  Page page = LayOutPage(ranked, 5, o, &rng);
  // content, product, content, then no content left: the best remaining, then past the layout.
  EXPECT_EQ(page.positions, (std::vector<size_t>{3, 0, 4, 1, 2}));
}

TEST(Rerank, HoldsAtMostMaxPerCategoryWhileOtherCategoriesRemain) {
  std::vector<PageCandidate> ranked = {{1, 7}, {1, 7}, {1, 7}, {1, 8}, {1, 0}, {1, 0}};
  PageOptions o;
  o.max_per_category = 2;
  std::mt19937_64 rng(1);
  EXPECT_EQ(LayOutPage(ranked, 5, o, &rng).positions, (std::vector<size_t>{0, 1, 3, 4, 5}));  // category 0 is unlimited
  // Nothing else left: the page is filled anyway.
  EXPECT_EQ(LayOutPage(ranked, 6, o, &rng).positions, (std::vector<size_t>{0, 1, 3, 4, 5, 2}));
}

TEST(Rerank, ExplorationPlacesOnlyNewItemsAndDrawsNothingWithoutThem) {
  std::vector<PageCandidate> ranked(10);
  ranked[6].is_new = ranked[8].is_new = true;
  PageOptions o;
  o.explore_share = 1.0;
  std::mt19937_64 rng(5);
  Page page = LayOutPage(ranked, 4, o, &rng);
  ASSERT_EQ(page.positions.size(), 4u);
  EXPECT_TRUE(page.explored[6] && page.explored[8]);
  EXPECT_EQ(std::count(page.explored.begin(), page.explored.end(), 1), 2);
  EXPECT_EQ(page.positions[2], 0u);  // the new items used up: the best ones follow
  for (auto& c : ranked) c.is_new = false;
  std::mt19937_64 untouched(5), reference(5);
  page = LayOutPage(ranked, 4, o, &untouched);
  EXPECT_EQ(page.positions, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(untouched(), reference());
}

TEST(Rerank, APageIsNeverLongerThanTheCandidates) {
  std::vector<PageCandidate> ranked(3);
  std::mt19937_64 rng(1);
  EXPECT_EQ(LayOutPage(ranked, 10, PageOptions{}, &rng).positions.size(), 3u);
  EXPECT_TRUE(LayOutPage({}, 10, PageOptions{}, &rng).positions.empty());
  EXPECT_EQ(SlotKinds({"product", "content"}), (std::vector<int>{0, 1}));
}

TEST_F(StagesTest, ActivityGathersHistoryContactAndClickedContentWithinTheirWindows) {
  const TimeMs now = 100 * kMsPerDay;
  EventLog log;
  auto add = [&](TimeMs days_ago, uint32_t item, EventType t) {
    log.Append(now - days_ago * kMsPerDay, 0, item, t, kAppHome, "");
  };
  add(200, 2, EventType::kClick);  // older than every window: history only
  add(60, 9, EventType::kClick);   // content clicked within the 90-day horizon
  add(20, 10, EventType::kImpression);
  add(5, 11, EventType::kClick);
  add(3, 2, EventType::kConvert);  // a second positive on item 2
  add(-1, 12, EventType::kClick);  // after now: not seen
  ActivityLog activity;
  activity.Build(log, ds_.customers.size());
  Activity a;
  activity.Gather(ds_, 0, now, 30 * kMsPerDay, 90 * kMsPerDay, 10, &a);
  EXPECT_EQ(a.history, (std::vector<uint32_t>{2, 11, 9}));  // distinct positives, newest first
  EXPECT_EQ(a.clicked, (std::vector<uint32_t>{9, 11}));
  ASSERT_EQ(a.contact.size(), 3u);  // the last 30 days, oldest first
  EXPECT_EQ(a.contact[0].item, 10u);
  activity.AddFeedback(0, Ev{now - kMsPerDay, 13, EventType::kClick, kAppHome}, 90 * kMsPerDay);
  activity.Gather(ds_, 0, now, 30 * kMsPerDay, 90 * kMsPerDay, 2, &a);
  EXPECT_EQ(a.history, (std::vector<uint32_t>{13, 2}));  // feedback first; history_length 2
  EXPECT_EQ(a.contact.size(), 4u);
  EXPECT_EQ(a.contact.back().item, 13u);
}

// Feedback kept in memory is bounded: past kPruneAbove events of a customer, those older than
// `keep` before the newest go; the recent ones stay whole and in time order.
TEST_F(StagesTest, FeedbackInMemoryKeepsTheRecentEventsOnly) {
  const TimeMs now = 100 * kMsPerDay;
  ActivityLog activity;
  activity.Build(EventLog{}, ds_.customers.size());
  const int n = 3 * static_cast<int>(ActivityLog::kPruneAbove);
  for (int k = 0; k < n; ++k) {  // one impression an hour, oldest first
    activity.AddFeedback(0, Ev{now - (n - k) * kMsPerHour, 10, EventType::kImpression, kAppHome}, 10 * kMsPerDay);
  }
  std::vector<Ev> kept;
  activity.Recent(0, kNoTime + 1, now, &kept);
  ASSERT_FALSE(kept.empty());
  EXPECT_LE(kept.size(), ActivityLog::kPruneAbove + 1) << "older than 10 days before the newest: dropped";
  EXPECT_GE(kept.size(), static_cast<size_t>(10 * 24)) << "the last 10 days stay";
  EXPECT_EQ(kept.back().ts, now - kMsPerHour);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end(), [](const Ev& x, const Ev& y) { return x.ts < y.ts; }));
  std::vector<Ev> other;
  activity.Recent(1, kNoTime + 1, now, &other);
  EXPECT_TRUE(other.empty()) << "another customer's list is untouched";
}

class FilterTest : public StagesTest {
 protected:
  void SetUp() override {
    static std::atomic<int> n{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("qm_stages_filter_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    std::filesystem::remove_all(dir_);
    policy::StoreConfig sc;
    sc.path = dir_.string();
    sc.sync = false;
    store_ = std::move(policy::EventStore::Open(sc)).value();
    policy_ = std::make_unique<policy::Policy>(
        std::move(policy::Policy::Create(policy::PolicyConfig{}, ds_.channels, TimeZone::Utc())).value());
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<policy::EventStore> store_;
  std::unique_ptr<policy::Policy> policy_;
};

TEST_F(FilterTest, MovesAllowedCandidatesOnAndCountsEveryBlockingRule) {
  ds_.items[1].risk = 5;  // R5 for a C3 customer
  CandidateSet set(16, &retired_);
  for (uint32_t it : {0u, 1u, 9u, 10u}) set.Add(it, Source::kAnn);
  std::vector<Candidate> allowed;
  std::map<std::string, int64_t> dropped;
  const std::vector<uint32_t> clicked = {9};
  ASSERT_TRUE(FilterCandidates(*policy_, store_.get(), ds_, ds_.customers[0], clicked, kAppHome, 50 * kMsPerDay, 0,
                               &set, &allowed, &dropped)
                  .ok());
  ASSERT_EQ(allowed.size(), 2u);
  EXPECT_EQ(allowed[0].item, 0u);
  EXPECT_EQ(allowed[1].item, 10u);
  EXPECT_EQ(dropped[policy::blocked::kSuitability], 1);
  EXPECT_EQ(dropped[policy::blocked::kClicked], 1);
  EXPECT_FALSE(set.Add(0, Source::kPopular) || set.Add(10, Source::kPopular));  // closed: no new reasons
  std::vector<std::string> blocked;
  StaticBlocked(*policy_, ds_, ds_.customers[0], clicked, 9, kAppHome, 50 * kMsPerDay, &blocked);
  EXPECT_EQ(blocked, (std::vector<std::string>{policy::blocked::kClicked}));
  StaticBlocked(*policy_, ds_, ds_.customers[0], clicked, 1, kAppHome, 50 * kMsPerDay, &blocked);
  EXPECT_EQ(blocked, (std::vector<std::string>{policy::blocked::kSuitability}));
}

TEST_F(FilterTest, AnyEligibleFallbackTakesOnlyWhatTheStatelessRulesAllow) {
  PopularLists popular;
  popular.any_order = {1, 0, 2, 9};
  ds_.items[1].risk = 5;
  CandidateSet set(16, &retired_);
  set.Add(0, Source::kAnn);
  EXPECT_EQ(RecallAnyEligible(popular, ds_, retired_, *policy_, ds_.customers[0], kAppHome, 50 * kMsPerDay, 2, &set),
            2);
  EXPECT_EQ(Items(set), (std::vector<uint32_t>{0, 2, 9}));
  EXPECT_TRUE(set[1].fallback);
  EXPECT_EQ(Reasons(set, ds_, 1), (std::vector<std::string>{"fallback:any_eligible"}));
}

// A customer no marketing may reach on the channel: only the service items among the scanned
// positions are tried, and they are the items the whole scan finds.
TEST_F(FilterTest, AnyEligibleFallbackForACustomerWithoutConsentFindsWhatTheWholeScanFinds) {
  ds_.items[2].service = ds_.items[9].service = ds_.items[11].service = ds_.items[15].service = true;
  ds_.items[9].risk = 5;  // a service item the stateless rules still block (suitability)
  PopularLists popular;
  popular.any_order = {1, 0, 2, 9, 4, 15, 5};
  popular.any_order.resize(PopularLists::kAnyEligibleScan, 6);  // padding up to the scan's end
  popular.any_order.push_back(11);                              // a service item past it
  popular.IndexService(ds_);
  EXPECT_EQ(popular.service_at, (std::vector<uint32_t>{2, 3, 5}));
  Customer cu = ds_.customers[0];
  cu.opt_out = 1u << kAppHome;
  ASSERT_TRUE(policy_->BlocksAllMarketing(cu, kAppHome, 50 * kMsPerDay));
  // The whole scan's answer, item by item.
  std::vector<uint32_t> want;
  for (size_t k = 0; k < PopularLists::kAnyEligibleScan; ++k) {
    const uint32_t it = popular.any_order[k];
    std::vector<std::string> blocked;
    policy_->StaticCheck(cu, policy::MakeCandidate(ds_, it), kAppHome, 50 * kMsPerDay, &blocked);
    if (blocked.empty() && std::find(want.begin(), want.end(), it) == want.end()) want.push_back(it);
  }
  EXPECT_EQ(want, (std::vector<uint32_t>{2, 15}));
  CandidateSet set(16, &retired_);
  EXPECT_EQ(RecallAnyEligible(popular, ds_, retired_, *policy_, cu, kAppHome, 50 * kMsPerDay, 10, &set), 2);
  EXPECT_EQ(Items(set), want);
  // An item made a service item later is found once the positions are re-indexed.
  ds_.items[4].service = true;
  popular.IndexService(ds_);
  CandidateSet again(16, &retired_);
  EXPECT_EQ(RecallAnyEligible(popular, ds_, retired_, *policy_, cu, kAppHome, 50 * kMsPerDay, 10, &again), 3);
  EXPECT_EQ(Items(again), (std::vector<uint32_t>{2, 4, 15}));
}

}  // namespace
}  // namespace qm::serving
