#include "qianmian/features/feature_space.h"

#include <gtest/gtest.h>
#include <cmath>
#include <filesystem>
#include <random>

namespace qm::features {
namespace {

Dataset SmallBank() {
  Dataset ds;
  ds.labels.Intern("payroll");
  ds.labels.Intern("retiree");
  uint32_t jinan = ds.regions.Intern("Jinan");
  uint32_t fund = ds.categories.Intern("fund");
  uint32_t tag = ds.item_tags.Intern("equity");
  Item p;
  p.id = "P1";
  p.kind = ItemKind::kProduct;
  p.category = fund;
  p.tags = {tag};
  p.risk = 4;
  p.title = "股票基金";
  ds.AddItem(p);
  Item a;
  a.id = "A1";
  a.title = "理财小课堂";
  ds.AddItem(a);
  Customer c;
  c.id = "C1";
  c.tier = Tier::kAffluent;
  c.risk = 3;
  c.risk_assessed = 1000;
  c.region = jinan;
  c.tags = {0, 1};
  ds.AddCustomer(c);
  Customer d;
  d.id = "C2";
  ds.AddCustomer(d);
  FeatureColumn age;
  age.name = "age";
  age.numeric = {30.0f, NAN};
  ds.features.push_back(age);
  FeatureColumn seg;
  seg.name = "segment";
  seg.kind = FeatureColumn::Kind::kCategorical;
  seg.categories.Intern("");
  seg.codes = {seg.categories.Intern("gold"), 0};
  ds.features.push_back(seg);
  // C1 clicks P1 at t=10 and A1 at t=20.
  ds.events.Append(10, 0, 0, EventType::kClick, kAppHome, "");
  ds.events.Append(20, 0, 1, EventType::kClick, kAppHome, "");
  ds.events.Append(25, 0, 1, EventType::kImpression, kAppHome, "");
  return ds;
}

TEST(FeatureSpace, EncodesCustomersIntoFixedShapes) {
  Dataset ds = SmallBank();
  auto fs = FeatureSpace::Fit(ds, FeatureOptions{});
  ASSERT_TRUE(fs.ok());
  HistoryIndex hist(ds.events, ds.customers.size());
  CustomerBatch b;
  uint32_t ids[2] = {0, 1};
  fs->EncodeCustomers(ds, ids, 2, 100, &hist, &b);
  ASSERT_EQ(b.n, 2);
  EXPECT_EQ(b.cat.size(), 2u * fs->customer_cat_fields());
  EXPECT_EQ(b.dense.size(), 2u * fs->customer_dense());
  EXPECT_EQ(b.history.size(), 2u * fs->history_length());
  for (auto v : b.cat) {
    EXPECT_GE(v, 0);
    EXPECT_LT(v, fs->customer_cat_vocab());
  }
  // Newest first: A1 then P1, then padding.
  EXPECT_EQ(b.history[0], fs->ItemVocabId("A1"));
  EXPECT_EQ(b.history[1], fs->ItemVocabId("P1"));
  EXPECT_EQ(b.history[2], 0);
  // Customer 1 has no labels: one "none" entry so EmbeddingBag stays well-defined.
  EXPECT_EQ(b.label_offsets, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(b.labels.back(), 0);
  // Missing numeric value: 0 plus a missing flag.
  EXPECT_FLOAT_EQ(b.dense[fs->customer_dense() + 1], 1.0f);
}

TEST(FeatureSpace, BucketsNumericColumnsByQuantileSoSentinelsGetTheirOwnBucket) {
  Dataset ds = SmallBank();
  // Replace age with a column where 999 means "never" (like pdays in UCI Bank Marketing).
  ds.features[0].numeric = {3.0f, 999.0f};
  features::FeatureOptions o;
  o.numeric_buckets = 4;
  auto fs = FeatureSpace::Fit(ds, o);
  ASSERT_TRUE(fs.ok());
  CustomerBatch b;
  fs->EncodeCustomer(ds, 0, 0, {}, &b);
  fs->EncodeCustomer(ds, 1, 0, {}, &b);
  const int F = fs->customer_cat_fields();
  // The last categorical field is "q.age": different buckets for 3 and 999.
  EXPECT_NE(b.cat[F - 1], b.cat[2 * F - 1]);
  CustomerBatch u;
  fs->EncodeUnknownCustomer(&u);
  EXPECT_EQ(u.cat.size(), static_cast<size_t>(F));
}

TEST(FeatureSpace, MarksExpiredAssessmentsDifferentlyFromValidOnes) {
  Dataset ds = SmallBank();
  auto fs = FeatureSpace::Fit(ds, FeatureOptions{});
  ASSERT_TRUE(fs.ok());
  CustomerBatch valid, expired;
  fs->EncodeCustomer(ds, 0, 1000 + kMsPerDay, {}, &valid);
  fs->EncodeCustomer(ds, 0, 1000 + 400 * kMsPerDay, {}, &expired);
  EXPECT_NE(valid.cat, expired.cat);
}

TEST(FeatureSpace, HistoryExcludesEventsAtOrAfterNow) {
  Dataset ds = SmallBank();
  HistoryIndex hist(ds.events, ds.customers.size());
  std::vector<uint32_t> out;
  hist.Before(0, 20, 5, &out);
  EXPECT_EQ(out, std::vector<uint32_t>{0});
  hist.SeenBefore(0, 21, &out);
  EXPECT_EQ(out, (std::vector<uint32_t>{0, 1}));
}

TEST(FeatureSpace, GivesUnknownItemsTheOovIdButKeepsTheirTextFeatures) {
  Dataset ds = SmallBank();
  auto fs = FeatureSpace::Fit(ds, FeatureOptions{});
  ASSERT_TRUE(fs.ok());
  Item fresh;
  fresh.id = "NEW";
  fresh.title = "理财小课堂第二期";
  uint32_t idx = ds.AddItem(fresh);
  ItemBatch b;
  fs->EncodeItems(ds, &idx, 1, &b);
  EXPECT_EQ(b.cat[0], 1);  // OOV
  EXPECT_GT(b.text.size(), 5u);
  for (auto t : b.text) EXPECT_LT(t, fs->text_vocab());
}

TEST(FeatureSpace, SurvivesASaveAndLoadRoundTrip) {
  Dataset ds = SmallBank();
  auto fs = FeatureSpace::Fit(ds, FeatureOptions{});
  ASSERT_TRUE(fs.ok());
  auto path = (std::filesystem::temp_directory_path() / "qm_features_test.json").string();
  ASSERT_TRUE(fs->Save(path).ok());
  auto loaded = FeatureSpace::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  CustomerBatch a, b;
  fs->EncodeCustomer(ds, 0, 500, {1, 0}, &a);
  loaded->EncodeCustomer(ds, 0, 500, {1, 0}, &b);
  EXPECT_EQ(a.cat, b.cat);
  EXPECT_EQ(a.dense, b.dense);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.history, b.history);
  ItemBatch ia, ib;
  uint32_t items[2] = {0, 1};
  fs->EncodeItems(ds, items, 2, &ia);
  loaded->EncodeItems(ds, items, 2, &ib);
  EXPECT_EQ(ia.cat, ib.cat);
  EXPECT_EQ(ia.text, ib.text);
  std::filesystem::remove(path);
  EXPECT_FALSE(FeatureSpace::Load(path).ok());
}

TEST(ContactFeatures, CountsExposuresPerWindowAndTimeSinceLastContact) {
  std::vector<ContactEvent> recent = {
      {0, 7, 1, kWechatPush, EventType::kPushSent},
      {20 * kMsPerDay, 7, 1, kWechatPush, EventType::kPushSent},
      {29 * kMsPerDay, 8, 1, kWechatPush, EventType::kPushSent},
      {29 * kMsPerDay + 1, 8, 1, kWechatPush, EventType::kPushOpen},
  };
  float f[kContactFeatures];
  ContactFeatures(recent, 7, 1, kWechatPush, 30 * kMsPerDay, f);
  // Item 7 was pushed 30 and 10 days ago: only the 30-day window holds them.
  EXPECT_FLOAT_EQ(f[0], 0.0f);
  EXPECT_FLOAT_EQ(f[1], 0.0f);
  EXPECT_FLOAT_EQ(f[2], std::log1p(2.0f));
  // Category 1 and the channel: one contact exactly a day ago, three in 30 days.
  EXPECT_FLOAT_EQ(f[3], std::log1p(1.0f));
  EXPECT_FLOAT_EQ(f[5], std::log1p(3.0f));
  EXPECT_FLOAT_EQ(f[6], std::log1p(1.0f));
  EXPECT_FLOAT_EQ(f[8], std::log1p(3.0f));
  EXPECT_FLOAT_EQ(f[9], std::log1p(1.0f));    // days since the last push
  EXPECT_FLOAT_EQ(f[10], std::log1p(10.0f));  // days since item 7 was last shown
  EXPECT_FLOAT_EQ(f[11], 0.0f);               // no positive on item 7
  EXPECT_FLOAT_EQ(f[12], std::log1p(1.0f));   // one open in category 1
}

// Counts come from a table below 256 and from log1p above; both match log1p exactly, and a
// customer never contacted on the channel gets the 60-day cap.
TEST(ContactFeatures, LargeCountsAndNoContactMatchLog1pExactly) {
  for (int count : {0, 1, 2, 255, 256, 300}) {
    std::vector<ContactEvent> recent;
    for (int k = 0; k < count; ++k) recent.push_back({kMsPerDay + k, 7, 1, kWechatPush, EventType::kPushSent});
    float f[kContactFeatures];
    ContactFeatures(recent, 7, 1, kWechatPush, 2 * kMsPerDay, f);
    EXPECT_EQ(f[0], std::log1p(static_cast<float>(count))) << count;
    EXPECT_EQ(f[6], std::log1p(static_cast<float>(count))) << count;
    ContactFeatures(recent, 9, 2, kAppHome, 2 * kMsPerDay, f);
    EXPECT_EQ(f[9], static_cast<float>(std::log1p(60.0))) << count;
    EXPECT_EQ(f[0], 0.0f);
  }
}

// The per-request summary gives exactly ContactFeatures' values for every item and category:
// random histories (repeated items and categories, every event type, events at or after `now`),
// items and categories with and without events.
TEST(ContactSummary, GivesExactlyTheFeaturesOfTheFullPass) {
  std::mt19937 rng(11);
  const EventType types[] = {EventType::kImpression, EventType::kPushSent, EventType::kClick,
                             EventType::kConvert,    EventType::kPushOpen, EventType::kDismiss};
  int compared = 0, nonzero = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const TimeMs now = 40 * kMsPerDay;
    std::vector<ContactEvent> recent;
    const int n = static_cast<int>(rng() % 60);
    TimeMs ts = now - 45 * kMsPerDay;
    for (int k = 0; k < n; ++k) {
      ts += static_cast<TimeMs>(rng() % (2 * kMsPerDay));  // oldest first; may pass `now`
      recent.push_back({ts, static_cast<uint32_t>(rng() % 12), static_cast<uint32_t>(rng() % 5),
                        static_cast<ChannelId>(rng() % 3), types[rng() % 6]});
    }
    const ChannelId channel = static_cast<ChannelId>(rng() % 3);
    const ContactSummary summary(recent, channel, now);
    for (uint32_t item = 0; item < 14; ++item) {
      for (uint32_t category = 0; category < 6; ++category) {
        float want[kContactFeatures], got[kContactFeatures];
        ContactFeatures(recent, item, category, channel, now, want);
        summary.Features(item, category, got);
        for (int f = 0; f < kContactFeatures; ++f) {
          ASSERT_EQ(got[f], want[f]) << "trial " << trial << " item " << item << " category " << category << " feature "
                                     << f;
          nonzero += f < 9 && want[f] != 0.0f;
        }
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, 200 * 14 * 6);
  EXPECT_GT(nonzero, 10000) << "the histories exercise the counts";
}

}  // namespace
}  // namespace qm::features
